"""The audit log in words: what a stored action code and a stored actor name mean to a person
reading the log in their language. The log keeps codes (`subject.erase`, `system`) so that it
reads the same whatever the language of whoever wrote it; pages turn them into words here.

An action is "<what>.<verb>". Every code a service writes has its words
(tests/test_i18n.py reads the services' code and checks); a code nobody listed is still
shown as it is rather than hidden.
"""

from __future__ import annotations

import re

from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

AUDIT_OBJECTS = {
    "api_key": _("API key"),
    "biometrics": _("face pictures"),
    "box": _("recognition box"),
    "company": _("company"),
    "consent": _("consent"),
    "department": _("department"),
    "event": _("event"),
    "job": _("job"),
    "pad": _("check-in pad"),
    "photo": _("photo"),
    "photo_upload": _("photo upload"),
    "privacy": _("retention purge"),
    "retention_policy": _("retention policy"),
    "screen": _("screen"),
    "subject": _("subject"),
    "tvbox": _("TV box"),
    "unknown_person": _("unknown person"),
    "user": _("user"),
    "visit": _("visit"),
    "webhook": _("webhook"),
}
AUDIT_VERBS = {
    "access_export": _("personal data exported"),
    "add": _("added"),
    "add_to_subject": _("added to a subject"),
    "attach": _("moved to another box"),
    "cancel": _("cancelled"),
    "check_in": _("visitor checked in at reception"),
    "confirm": _("confirmed"),
    "correct": _("corrected"),
    "create": _("created"),
    "delete": _("deleted"),
    "disable": _("turned off"),
    "enrol": _("enrolled"),
    "erase": _("erased"),
    "face_decline": _("face option declined"),
    "ignore": _("ignored"),
    "import": _("imported"),
    "invitation_resend": _("invitation sent again"),
    "invitation_send": _("invitation sent"),
    "key_revoke": _("key revoked"),
    "key_rotate": _("new key issued"),
    "link_issue": _("new personal link issued"),
    "link_revoke": _("personal link revoked"),
    "logout": _("signed out everywhere"),
    "mark_left": _("visitor marked as left"),
    "merge": _("merged"),
    "password_change": _("password changed"),
    "password_set": _("password set"),
    "ping": _("test delivery sent"),
    "preview": _("checked"),
    "purge": _("ran"),
    "redeliver": _("delivered again"),
    "revoke": _("revoked"),
    "rotate_secret": _("new signing secret issued"),
    "search_by_face": _("searched by face"),
    "start": _("started"),
    "store": _("received"),
    "token_reuse": _("a used sign-in token was presented again"),
    "update": _("changed"),
    "verify_face": _("face checked against a photo"),
    "view": _("viewed"),
    "withdraw": _("withdrawn"),
}


def audit_action_label(action: str) -> str:
    what, _dot, verb = action.partition(".")
    if what in AUDIT_OBJECTS and verb in AUDIT_VERBS:
        # capfirst: str.capitalize would lower the rest ("TV box" read "Tv box").
        return f"{capfirst(AUDIT_OBJECTS[what])} · {AUDIT_VERBS[verb]}"
    return action


# Who acted, when no user did: the names the services store for the product itself.
_VISITOR_LINK = re.compile(r"^visitor link \(visit (\d+)\)$")


def actor_label(actor_repr: str) -> str:
    """A stored actor name in words: a user's login name as it is; the product's own
    actors (the periodic jobs, a live page, a visitor's personal link) translated."""
    if actor_repr == "system":
        return gettext("system")
    if actor_repr == "live page":
        return gettext("live page")
    visit = _VISITOR_LINK.match(actor_repr)
    if visit:
        return gettext("the visitor’s personal link (visit %(id)s)") % {"id": visit[1]}
    return actor_repr
