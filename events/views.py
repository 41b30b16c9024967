"""The live pages: the admin dashboard and the TV box welcome screen."""

from django.contrib.admin.views.decorators import staff_member_required
from django.core import signing
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.services import audit_biometric_view
from devices.models import Direction, Status
from devices.selectors import screen_list
from events.charts import arrival_charts
from events.hooks import dashboard_panels_render
from events.live import LIVE_IMAGE_MAX_AGE, LIVE_IMAGE_SALT
from events.models import Event, snapshot_subject_ref
from kangaroo.media import media_response
from subjects.models import Photo

# Shown when not zero (online always); "lagging": boxes behind the gallery (devices.selectors.gallery_lag).
DEVICE_PANEL_STATES = [
    (Status.ONLINE.value, _("online")),
    (Status.OFFLINE.value, _("offline")),
    ("lagging", _("lagging")),
]


def live_labels() -> dict:
    """The live pages' words, translated on the server for the page's script."""
    return {
        "welcome": _("Welcome, {name}!"),
        "welcome_vip": _("Welcome, {name} — VIP"),
        # No word of a host being told: nothing notifies one yet (the card would lie).
        "welcome_visitor": _("Welcome, {name}!"),
        "stranger": _("Unknown person at {device}"),
        "seen_once": _("Seen once today"),
        "seen_today": _("Seen {count} times today"),
        "corrected": _("Corrected"),
        "outside_window": _("{name} is visiting outside their visit window"),
        "checked_in": _("Checked in at reception"),
        "device_offline": _("{device} went offline"),
        "device_online": _("{device} is back online"),
        "live": _("Live"),
        "reconnecting": _("Reconnecting…"),
        "refused": _("Not allowed: check the key or sign in again."),
        "directions": {value: str(label) for value, label in Direction.choices},
        "devices_none": _("No device has reported yet ({count} registered)."),
        # The device panel's states, in order; a state the server adds shows once named here.
        "device_states": [[value, str(label)] for value, label in DEVICE_PANEL_STATES],
    }


@never_cache
@staff_member_required
def dashboard(request):
    company = request.user.company
    if company is None:
        raise Http404  # platform staff watch a company's dashboard by signing in as its admin
    screens = list(screen_list(company=company))
    return render(
        request,
        "events/dashboard.html",
        {
            "company": company,
            "screens": screens,
            # Cards name the camera (and its direction), not the box that relayed the event.
            "screen_names": {screen.pk: {"name": screen.name, "direction": screen.direction} for screen in screens},
            "labels": live_labels(),
            "charts": arrival_charts(company=company, today_title=_("Today"), week_title=_("This week")),
            "panels": dashboard_panels_render(request, company),
        },
    )


@never_cache
def tv(request):
    # The page holds no data: it authenticates over the websocket with the TV box's key.
    return render(request, "events/tv.html", {"labels": live_labels()})


@require_GET
def live_image(request, token: str):
    """A thumbnail or snapshot for a live page, by a signed link the event stream issued
    after checking who is listening; the link names the company and expires in minutes."""
    try:
        claim = signing.loads(token, salt=LIVE_IMAGE_SALT, max_age=LIVE_IMAGE_MAX_AGE)
    except signing.BadSignature:
        raise Http404 from None
    model, field = {"photo": (Photo, "thumbnail"), "snapshot": (Event, "snapshot")}.get(claim.get("k"), (None, None))
    company_id = claim.get("c")
    item = (
        model.objects.filter(company_id=company_id, pk=claim.get("id")).first()  # tenant: the signed claim's company
        if model is not None and company_id
        else None
    )
    file = getattr(item, field) if item is not None else None
    if not file:
        raise Http404
    # The link was issued to a connection allowed to see faces (a viewer's page gets none).
    ref = str(item.subject_id) if model is Photo else snapshot_subject_ref(item)
    audit_biometric_view(request=request, company_id=int(company_id), subject_ref=ref, kind=claim["k"])
    return media_response(file)
