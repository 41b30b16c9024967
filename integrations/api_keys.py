"""Company API keys: for integrations that are not people (an HR system, a report builder).

A key is `kgr_api_<company id>_<prefix>_<secret>` (the shape of device keys,
`devices.keys`): the public part finds its one row with an index that starts with the
company, and only a SHA-256 of the whole key is stored. It is shown once. A key carries
scopes, each a kind of data and what it may do with it; a request needs the scope its view
declares (`api_key_scopes`, checked by `kangaroo.api.permissions`), and a view that
declares none is not for keys at all (users, the company, the audit log, keys themselves).
A key acts only for its company, like a token of one of its users, and every write made
with it is audited under its name (`api-key:<name>`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Company, User
from accounts.services import audit_record
from devices import keys
from integrations.models import ApiKey, ApiScope
from kangaroo import errors
from kangaroo.errors import KangarooError

KEY_KIND = "api"
KEY_PREFIX = f"{keys.KEY_TAG}_{KEY_KIND}_"
# The last use is written at most this often per key (and when the address changes), so a
# busy integration does not write a row per request.
LAST_USED_EVERY = timedelta(seconds=60)


def _check_scopes(scopes: Sequence[str]) -> list[str]:
    wanted = list(scopes or [])
    unknown = [scope for scope in wanted if scope not in ApiScope.values]
    if unknown or not wanted:
        message = (
            _("Unknown scopes: %(scopes)s.") % {"scopes": ", ".join(map(str, unknown))}
            if unknown
            else _("Choose at least one scope.")
        )
        raise KangarooError(errors.VALIDATION_ERROR, fields={"scopes": [str(message)]})
    return [scope for scope in ApiScope.values if scope in wanted]


def _check_name(company: Company, name: str, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name:
        raise KangarooError(errors.VALIDATION_ERROR, fields={"name": [str(_("A name is required."))]})
    if ApiKey.objects.for_company(company).filter(name__iexact=name).exclude(pk=exclude_pk).exists():
        raise KangarooError(errors.API_KEY_NAME_TAKEN, fields={"name": [str(errors.API_KEY_NAME_TAKEN.message)]})
    return name


@transaction.atomic
def api_key_create(
    *,
    company: Company,
    actor: User | None,
    name: str,
    scopes: Sequence[str],
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key of `company` and its secret text (shown once; only its hash is kept)."""
    name = _check_name(company, name)
    scopes = _check_scopes(scopes)
    issued = keys.issue_key(KEY_KIND, company.pk)
    try:
        with transaction.atomic():
            api_key = ApiKey.objects.create(
                company=company,
                name=name,
                scopes=scopes,
                expires_at=expires_at,
                prefix=issued.prefix,
                key_hash=issued.hash,
                created_by=actor if isinstance(actor, User) and actor.pk else None,
            )
    except IntegrityError:  # a concurrent key took the name
        raise KangarooError(
            errors.API_KEY_NAME_TAKEN, fields={"name": [str(errors.API_KEY_NAME_TAKEN.message)]}
        ) from None
    audit_record(
        company=company,
        actor=actor,
        action="api_key.create",
        obj=api_key,
        changes={"scopes": scopes, "expires_at": expires_at},
    )
    return api_key, issued.key


API_KEY_EDITABLE_FIELDS = ("name", "scopes", "expires_at")


@transaction.atomic
def api_key_update(*, company: Company, actor: User | None, api_key: ApiKey, **data) -> ApiKey:
    unknown = set(data) - set(API_KEY_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"api_key_update does not change {sorted(unknown)}")
    api_key = ApiKey.objects.for_company(company).select_for_update().get(pk=api_key.pk)
    if "name" in data:
        data["name"] = _check_name(company, data["name"], exclude_pk=api_key.pk)
    if "scopes" in data:
        data["scopes"] = _check_scopes(data["scopes"])
    changes = {name: [getattr(api_key, name), value] for name, value in data.items() if getattr(api_key, name) != value}
    if changes:
        for name, value in data.items():
            setattr(api_key, name, value)
        api_key.save(update_fields=list(changes))
        audit_record(company=company, actor=actor, action="api_key.update", obj=api_key, changes=changes)
    return api_key


@transaction.atomic
def api_key_revoke(*, company: Company, actor: User | None, api_key: ApiKey) -> ApiKey:
    """The key stops working at once; its record stays (name, last use) for the audit trail."""
    api_key = ApiKey.objects.for_company(company).select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(company=company, actor=actor, action="api_key.revoke", obj=api_key)
    return api_key


def is_api_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX)


def api_key_for(text: str, *, now: datetime | None = None) -> ApiKey:
    """The active key `text` is, or KangarooError: `api_key_invalid`, `api_key_revoked`,
    `api_key_expired`. The same answer for a wrong secret and an unknown prefix."""
    parsed = keys.parse_key(text)
    if parsed is None or parsed.kind != KEY_KIND:
        raise KangarooError(errors.API_KEY_INVALID)
    api_key = (
        ApiKey.objects.for_company(parsed.company_id).select_related("company").filter(prefix=parsed.prefix).first()
    )
    if api_key is None or not keys.key_matches(text, api_key.key_hash) or not api_key.company.is_active:
        raise KangarooError(errors.API_KEY_INVALID)
    if api_key.revoked_at is not None:
        raise KangarooError(errors.API_KEY_REVOKED)
    if api_key.expires_at is not None and api_key.expires_at <= (now or timezone.now()):
        raise KangarooError(errors.API_KEY_EXPIRED)
    return api_key


def api_key_used(api_key: ApiKey, *, address: str | None, now: datetime | None = None) -> None:
    """Note when and from where the key was last used (at most once a minute per address)."""
    now = now or timezone.now()
    if (
        api_key.last_used_at is not None
        and now - api_key.last_used_at < LAST_USED_EVERY
        and api_key.last_used_ip == address
    ):
        return
    ApiKey.objects.for_company(api_key.company_id).filter(pk=api_key.pk).update(last_used_at=now, last_used_ip=address)
    api_key.last_used_at, api_key.last_used_ip = now, address
