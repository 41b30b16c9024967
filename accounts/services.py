"""Writes on companies, users and the audit log. Every write that matters is audited."""

from __future__ import annotations

import contextlib
import datetime
import enum
import hashlib
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import F
from django.db.models.fields.files import FieldFile
from django.utils import timezone, translation
from django.utils.duration import duration_iso_string
from django.utils.translation import gettext

from accounts.models import RETENTION_FIELDS, AuditLog, Company, RetentionPolicy, Role, User, normalise_language
from kangaroo import errors
from kangaroo.context import current_origin
from kangaroo.errors import KangarooError


def audit_record(
    *,
    company: Company | None,
    actor: User | None,
    action: str,
    obj: models.Model | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one audit entry. `action` reads `<entity>.<verb>`, e.g. `user.create`."""
    origin = current_origin()
    return AuditLog.objects.create(
        company=company,
        actor=actor if actor is not None and actor.pk else None,
        actor_repr=actor.get_username() if actor is not None else "system",
        action=action,
        object_type=ContentType.objects.get_for_model(obj) if obj is not None else None,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=audit_value(changes or {}),
        ip_address=origin.ip_address,
        user_agent=origin.user_agent,
    )


def audit_value(value: Any) -> Any:
    """`value` as JSON the audit log can store, for every type a model field holds: a row
    becomes its id, a date or time its ISO 8601 text, a file its name, binary data (an
    embedding) only its size, so no biometric bytes are copied into the log."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(key): audit_value(item) for key, item in value.items()}
    if isinstance(value, models.QuerySet):
        return sorted(value.values_list("pk", flat=True))
    if isinstance(value, (set, frozenset)):
        return sorted((audit_value(item) for item in value), key=str)
    if isinstance(value, (list, tuple)):
        return [audit_value(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return duration_iso_string(value)
    if isinstance(value, FieldFile):
        return value.name or None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, enum.Enum):
        return audit_value(value.value)
    return str(value)  # Decimal, UUID, IP addresses, lazy translations: their text


# A face seen through a company-checked view is audited at most once per clock hour per
# viewer and person: a live page shows the same thumbnail on every card and a list shows
# dozens, and a row per image would bury the log (and slow every page) without saying more.
BIOMETRIC_VIEW_WINDOW = 3600


def biometric_view_key(*, request, subject_ref: str, now: datetime.datetime | None = None) -> str:
    """The entry's `once_key`: the viewer, the person and the hour. The viewer is the
    signed-in user (or API key), or for a link without one (a TV box's page) the connection:
    its address and browser. Hashed, so the key has a bounded length and names no one."""
    origin = current_origin()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        who = f"user:{user.get_username()}:{getattr(user, 'pk', '')}"
    else:
        who = f"client:{origin.ip_address}|{origin.user_agent}"
    hour = int((now or timezone.now()).timestamp()) // BIOMETRIC_VIEW_WINDOW
    viewer = hashlib.sha256(who.encode()).hexdigest()[:32]
    return f"biometrics.view:{viewer}:{hour}:{subject_ref}"[:128]


def audit_biometric_view(*, request, company_id: int, subject_ref: str, kind: str) -> bool:
    """Record that the requester saw a face of `subject_ref` (a subject's id, or
    "unknown:<id>", "stranger" for what names no one): an audit entry `biometrics.view`,
    once per viewer, person and clock hour (`biometric_view_key`).

    The database holds the rule: the entry's `once_key` is unique within the company and is
    inserted with insert-ignore, so two web processes, a flushed cache, or two thumbnails
    fetched at once write one entry. The cache only spares the insert: a key it already
    holds for this hour is not sent to the database again. Returns False when the cache
    knew the entry was written, True when the insert was sent (it may have been ignored)."""
    origin = current_origin()
    user = getattr(request, "user", None)
    now = timezone.now()
    once_key = biometric_view_key(request=request, subject_ref=subject_ref, now=now)
    fast = f"kangaroo:{int(company_id)}:{once_key}"
    # Kept until the hour is over: a later view falls in the next hour's key anyway.
    remaining = BIOMETRIC_VIEW_WINDOW - int(now.timestamp()) % BIOMETRIC_VIEW_WINDOW
    if not cache.add(fast, 1, timeout=remaining):
        return False
    person = user if isinstance(user, User) and user.pk else None
    entry = AuditLog(
        company_id=company_id,
        actor=person,
        actor_repr=user.get_username() if user is not None and user.is_authenticated else "live page",
        action="biometrics.view",
        object_id=subject_ref[:64],
        object_repr=subject_ref[:200],
        changes={"kind": kind, "subject": subject_ref},
        ip_address=origin.ip_address,
        user_agent=origin.user_agent,
        once_key=once_key,
    )
    AuditLog.objects.bulk_create([entry], ignore_conflicts=True)  # tenant: the entry is built with `company_id`
    return True


def audit_record_many(
    *,
    company: Company,
    actor: User | None,
    entries: Iterable[tuple[str, models.Model, dict[str, Any] | None]],
) -> int:
    """Append one audit entry per (action, object, changes), as `audit_record` would, written
    in bulk: an import of 100,000 rows is audited row by row without 100,000 round trips.
    PostgreSQL receives them with COPY (bulk_create's INSERT of 10,000 entries took several
    times as long as the import's own INSERT of the rows); other databases with bulk_create.
    Returns how many entries were written."""
    origin = current_origin()
    actor_id = actor.pk if actor is not None and actor.pk else None
    actor_repr = actor.get_username() if actor is not None else "system"
    content_types: dict[type, ContentType] = {}
    rows = []
    for action, obj, changes in entries:
        model = type(obj)
        if model not in content_types:
            content_types[model] = ContentType.objects.get_for_model(obj)
        rows.append(
            AuditLog(
                company=company,
                actor_id=actor_id,
                actor_repr=actor_repr,
                action=action,
                object_type=content_types[model],
                object_id=str(obj.pk),
                object_repr=str(obj)[:200],
                changes=audit_value(changes or {}),
                ip_address=origin.ip_address,
                user_agent=origin.user_agent,
            )
        )
    if connection.vendor == "postgresql":
        _copy_audit_rows(rows)
    else:
        AuditLog.objects.bulk_create(rows, batch_size=2000)  # tenant: each entry built with `company`
    return len(rows)


def _copy_audit_rows(rows: list[AuditLog]) -> None:
    now = timezone.now()
    fields = [field for field in AuditLog._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    statement = (
        f"COPY {quote(AuditLog._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) FROM STDIN"
    )
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            row.created_at = now  # what auto_now_add would set
            copy.write_row([field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields])


def company_create(*, name: str, slug: str, time_zone: str = "Asia/Taipei", actor: User | None = None) -> Company:
    company = Company(name=name, slug=slug, time_zone=time_zone)
    company.full_clean()
    with transaction.atomic():
        company.save()
        audit_record(company=company, actor=actor, action="company.create", obj=company)
    return company


COMPANY_EDITABLE_FIELDS = (
    "name", "time_zone", "address", "work_start", "work_end", "date_order", "face_match_threshold",
    "consent_required",
    *RETENTION_FIELDS,
)  # fmt: skip


@transaction.atomic
def company_update(
    *,
    company: Company,
    actor: User | None,
    retention_policy: str | None = None,
    retention_policy_texts: Mapping[str, str] | None = None,
    retention_policy_language: str | None = None,
    **data: Any,
) -> Company:
    """Change the company's settings (owners); a changed retention policy (its main text,
    its texts by language, its main language) becomes its next version (see
    `retention_policy_set`)."""
    unknown = set(data) - set(COMPANY_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"company_update does not change {sorted(unknown)}")
    changes = {k: [getattr(company, k), v] for k, v in data.items() if getattr(company, k) != v}
    for name, value in data.items():
        setattr(company, name, value)
    company.full_clean()
    if changes:
        company.save(update_fields=list(changes))
        audit_record(company=company, actor=actor, action="company.update", obj=company, changes=changes)
    if (retention_policy, retention_policy_texts, retention_policy_language) != (None, None, None):
        retention_policy_set(
            company=company,
            actor=actor,
            text=retention_policy,
            texts=retention_policy_texts,
            language=retention_policy_language,
        )
    return company


# --- The retention policy ----------------------------------------------------------------------


RETENTION_POLICY_MAX_CHARS = 20000


def retention_policy_default_text(company: Company, language: str | None = None) -> str:
    """A company's first policy, written from its retention windows, in `language` (the
    active one when left out): a starting point its owner edits into their own words."""
    with translation.override(language) if language else contextlib.nullcontext():
        return gettext(
            "%(company)s uses face recognition at its doors. With your consent, it keeps your face "
            "photos and the face templates computed from them while you are enrolled, and deletes "
            "them: at once when you withdraw your consent; %(visitor)s days after your visit ends, "
            "if you are a visitor; after %(inactive)s days without a visit. Snapshots of people "
            "the cameras do not know are deleted %(stranger)s days after they were last seen. "
            "Records of who passed which door are kept for %(events)s days, the log of who did "
            "what in this system for %(audit)s days, and a consent form you signed for as long as "
            "you are enrolled and %(audit)s days after you withdraw your consent. Your face data "
            "is never shown to anyone "
            "outside %(company)s."
        ) % {
            "company": company.name,
            "visitor": company.retention_visitor_days,
            "inactive": company.retention_inactive_days,
            "stranger": company.retention_stranger_days,
            "events": company.retention_event_days,
            "audit": company.retention_audit_days,
        }


def _actor_repr(actor) -> str:
    return actor.get_username() if actor is not None else "system"


def _first_policy(company: Company) -> RetentionPolicy:
    """Version 1: the default text in every language of the product, the site's language
    the main one."""
    main = normalise_language(settings.LANGUAGE_CODE)
    texts = {
        normalise_language(code): retention_policy_default_text(company, code) for code, _name in settings.LANGUAGES
    }
    main_text = texts.pop(main, None) or retention_policy_default_text(company, main)
    return RetentionPolicy(company=company, version=1, text=main_text, language=main, translations=texts)


def retention_policy_current(*, company: Company) -> RetentionPolicy:
    """The company's current retention policy (its highest version). A company that has
    none yet gets version 1, written from its retention windows in every language."""
    policies = RetentionPolicy.objects.for_company(company)
    current = policies.first()
    if current is not None:
        return current
    with transaction.atomic():
        # Two first readers racing: the unique version makes one insert a no-op.
        RetentionPolicy.objects.bulk_create(  # tenant: the company's own first version
            [_first_policy(company)],
            ignore_conflicts=True,
        )
    return policies.first()


def retention_policy_language_check(language: str | None, *, field: str) -> str:
    """`language` as the policy keys it; `retention_policy_language_unknown` on `field`
    for a language that is not one of the product's."""
    code = normalise_language(language)
    if code not in {normalise_language(known) for known, _name in settings.LANGUAGES}:
        raise KangarooError(
            errors.RETENTION_POLICY_LANGUAGE_UNKNOWN,
            fields={field: [str(errors.RETENTION_POLICY_LANGUAGE_UNKNOWN.message)]},
        )
    return code


def _policy_text(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").strip()  # a browser's textarea sends CRLF


def retention_policy_texts_check(
    *,
    current: RetentionPolicy,
    text: str | None = None,
    texts: Mapping[str, str] | None = None,
    language: str | None = None,
) -> tuple[str, dict[str, str]]:
    """The main language and the texts by language that a change makes of `current`,
    checked, without writing anything. `texts` changes the languages it names (an empty
    text removes that language's); `language` makes another language the main one;
    `text` is the new text in the main language. Raises `validation_error` for an empty
    `text`, `retention_policy_language_unknown`, or `retention_policy_main_text_missing`
    when the main language would be left without a text."""
    new_texts = dict(current.texts)
    for code, value in (texts or {}).items():
        code = retention_policy_language_check(code, field="retention_policy_texts")
        value = _policy_text(value)
        if len(value) > RETENTION_POLICY_MAX_CHARS:
            raise KangarooError(
                errors.VALIDATION_ERROR,
                fields={"retention_policy_texts": [gettext("A text of the policy is too long.")]},
            )
        if value:
            new_texts[code] = value
        else:
            new_texts.pop(code, None)
    main = (
        current.language
        if language is None
        else retention_policy_language_check(language, field="retention_policy_language")
    )
    if text is not None:
        text = _policy_text(text)
        if not text:
            raise KangarooError(
                errors.VALIDATION_ERROR, fields={"retention_policy": [gettext("The retention policy cannot be empty.")]}
            )
        new_texts[main] = text
    if main not in new_texts:
        raise KangarooError(
            errors.RETENTION_POLICY_MAIN_TEXT_MISSING,
            fields={"retention_policy": [str(errors.RETENTION_POLICY_MAIN_TEXT_MISSING.message)]},
        )
    return main, new_texts


@transaction.atomic
def retention_policy_set(
    *,
    company: Company,
    actor: User | None,
    text: str | None = None,
    texts: Mapping[str, str] | None = None,
    language: str | None = None,
) -> RetentionPolicy:
    """Save the policy's texts (see `retention_policy_texts_check` for what `text`, `texts`
    and `language` change and the errors raised): a change of any text, in any language,
    or of the main language becomes the next version (audited); no change changes nothing."""
    # The company's row orders two owners saving at once: versions are numbered one by one.
    Company.objects.select_for_update().filter(pk=company.pk).first()  # tenant: the company itself
    current = retention_policy_current(company=company)
    main, new_texts = retention_policy_texts_check(current=current, text=text, texts=texts, language=language)
    if (main, new_texts) == (current.language, current.texts):
        return current
    main_text = new_texts.pop(main)
    policy = RetentionPolicy.objects.create(
        company=company,
        version=current.version + 1,
        text=main_text,
        language=main,
        translations=new_texts,
        created_by=actor if isinstance(actor, User) and actor.pk else None,
        created_by_repr=_actor_repr(actor),
    )
    audit_record(
        company=company,
        actor=actor,
        action="retention_policy.create",
        obj=policy,
        changes={"version": policy.version, "language": main, "languages": sorted(policy.texts)},
    )
    return policy


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise KangarooError(errors.PASSWORD_TOO_WEAK, fields={"password": list(exc.messages)}) from None


def _check_user_unique(*, company: Company, username: str, email: str, exclude_pk=None) -> None:
    taken = User.objects.for_company(company).filter(username__iexact=username)
    if taken.exclude(pk=exclude_pk).exists():
        raise KangarooError(errors.USERNAME_TAKEN, fields={"username": [str(errors.USERNAME_TAKEN.message)]})
    if email:
        same_email = User.objects.for_company(company).filter(email__iexact=email).exclude(pk=exclude_pk)
        if same_email.exists():
            raise KangarooError(errors.USER_EMAIL_TAKEN, fields={"email": [str(errors.USER_EMAIL_TAKEN.message)]})


@transaction.atomic
def user_create(
    *,
    company: Company,
    actor: User | None,
    username: str,
    password: str | None = None,
    role: str = Role.VIEWER,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    language: str = "",
    is_active: bool = True,
) -> User:
    """A company user who can sign in to the admin (all company users are staff there;
    what they may do is decided by their role)."""
    email = (email or "").strip()
    _check_user_unique(company=company, username=username, email=email)
    user = User(
        company=company,
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        role=role,
        language=language,
        is_active=is_active,
        is_staff=True,
    )
    if password:
        _check_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    audit_record(company=company, actor=actor, action="user.create", obj=user, changes={"role": role})
    return user


def _active_owner_count(company: Company) -> int:
    return User.objects.for_company(company).filter(role=Role.OWNER, is_active=True).count()


USER_EDITABLE_FIELDS = ("email", "first_name", "last_name", "role", "language", "is_active")


def user_update_check(*, company: Company, actor: User | None, user: User, data: dict[str, Any]) -> None:
    """The rules of a user change, raised as KangarooError; the admin's form calls it too."""
    changed = {k for k, v in data.items() if getattr(user, k) != v}
    if actor is not None and actor.pk == user.pk and ({"role", "is_active"} & changed):
        raise KangarooError(errors.CANNOT_CHANGE_SELF)
    if "email" in changed:
        _check_user_unique(company=company, username=user.username, email=data["email"], exclude_pk=user.pk)
    losing_owner = (
        user.role == Role.OWNER
        and user.is_active
        and (data.get("role", Role.OWNER) != Role.OWNER or data.get("is_active", True) is False)
    )
    if losing_owner and _active_owner_count(company) <= 1:
        raise KangarooError(errors.LAST_OWNER)


@transaction.atomic
def user_update(*, company: Company, actor: User | None, user: User, **data: Any) -> User:
    """Change a company user's profile, role or active flag.

    Keeps one active owner per company, and keeps users from locking themselves out.
    Deactivating a user revokes their tokens.
    """
    unknown = set(data) - set(USER_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"user_update does not change {sorted(unknown)}")
    # Lock the company's owners so two concurrent demotions cannot both pass the check.
    list(User.objects.for_company(company).filter(role=Role.OWNER).select_for_update())
    user = User.objects.for_company(company).select_for_update().get(pk=user.pk)
    if "email" in data:
        data["email"] = (data["email"] or "").strip()
    changes = {k: [getattr(user, k), v] for k, v in data.items() if getattr(user, k) != v}
    if not changes:
        return user
    user_update_check(company=company, actor=actor, user=user, data=data)
    for name, value in data.items():
        setattr(user, name, value)
    update_fields = list(changes)
    if changes.get("is_active", [True, True])[1] is False:
        user.token_generation = F("token_generation") + 1
        update_fields.append("token_generation")
    user.save(update_fields=update_fields)
    user.refresh_from_db()
    if "token_generation" in update_fields:
        _blacklist_refresh_tokens(user)
    audit_record(company=company, actor=actor, action="user.update", obj=user, changes=changes)
    return user


LANGUAGES = ("", "en", "zh-hant")


@transaction.atomic
def user_language_set(*, user: User, language: str) -> User:
    """A user picks their own language ("" follows the browser). Platform staff, who have
    no company, may too; a company user's change is audited like any profile change."""
    if language not in LANGUAGES:
        raise KangarooError(errors.VALIDATION_ERROR, fields={"language": [str(errors.VALIDATION_ERROR.message)]})
    if user.language == language:
        return user
    old = user.language
    user.language = language
    user.save(update_fields=["language"])
    if user.company_id is not None:
        audit_record(
            company=user.company, actor=user, action="user.update", obj=user, changes={"language": [old, language]}
        )
    return user


@transaction.atomic
def user_password_set(*, company: Company, actor: User | None, user: User, password: str) -> None:
    """An owner sets another user's password; that user's tokens are revoked.

    Not one's own: that takes the current password (`user_password_change`), so a token alone,
    perhaps a stolen one, cannot take over the account nor end its sessions."""
    if actor is not None and actor.pk == user.pk:
        raise KangarooError(
            errors.OWN_PASSWORD_NEEDS_CURRENT, fields={"password": [str(errors.OWN_PASSWORD_NEEDS_CURRENT.message)]}
        )
    user = User.objects.for_company(company).get(pk=user.pk)
    _check_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    user_tokens_revoke(user=user)
    audit_record(company=company, actor=actor, action="user.password_set", obj=user)


@transaction.atomic
def user_delete(*, company: Company, actor: User | None, user: User) -> None:
    list(User.objects.for_company(company).filter(role=Role.OWNER).select_for_update())
    user = User.objects.for_company(company).get(pk=user.pk)
    if actor is not None and actor.pk == user.pk:
        raise KangarooError(errors.CANNOT_CHANGE_SELF)
    if user.role == Role.OWNER and user.is_active and _active_owner_count(company) <= 1:
        raise KangarooError(errors.LAST_OWNER)
    audit_record(company=company, actor=actor, action="user.delete", obj=user)
    user.delete()


def _blacklist_refresh_tokens(user: User) -> None:
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )


def user_tokens_revoke(*, user: User) -> None:
    """Make every access and refresh token issued to `user` so far invalid."""
    User.objects.filter(pk=user.pk).update(token_generation=F("token_generation") + 1)  # tenant: by the user's own pk
    user.refresh_from_db(fields=["token_generation"])
    _blacklist_refresh_tokens(user)


@transaction.atomic
def user_password_change(*, user: User, old_password: str, new_password: str) -> None:
    if not user.check_password(old_password):
        raise KangarooError(
            errors.PASSWORD_INCORRECT, fields={"old_password": [str(errors.PASSWORD_INCORRECT.message)]}
        )
    _check_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    user_tokens_revoke(user=user)
    audit_record(company=user.company, actor=user, action="user.password_change", obj=user)


def user_logged_out(*, user: User) -> None:
    """API logout ends every session of the user's tokens, not just the one presented:
    a lost phone's tokens must die with the logout done from another device."""
    user_tokens_revoke(user=user)
    audit_record(company=user.company, actor=user, action="user.logout", obj=user)


def _token_family_revoke(*, user: User, family: str) -> int:
    """Deny the live refresh token of one family and mark its access tokens revoked.

    Called with the user's row locked, like every rotation, so no rotation of the same
    family can slip a new token in while its family is being revoked. Returns how many
    live refresh tokens it denied (0 when the family was already revoked).
    """
    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
    from rest_framework_simplejwt.tokens import UntypedToken

    from accounts.authentication import FAMILY_CLAIM, family_revoked_mark

    live = OutstandingToken.objects.filter(  # tenant: the user's own tokens
        user=user, blacklistedtoken__isnull=True, expires_at__gt=timezone.now()
    )
    members = []
    for outstanding in live:
        payload = UntypedToken(outstanding.token, verify=False).payload
        if payload.get(FAMILY_CLAIM, payload.get("jti")) == family:
            members.append(BlacklistedToken(token=outstanding))
    BlacklistedToken.objects.bulk_create(members, ignore_conflicts=True)
    family_revoked_mark(family)
    return len(members)


def _token_user_locked(payload) -> User | None:
    from rest_framework_simplejwt.settings import api_settings as jwt_settings

    return (
        User.objects.select_for_update()  # tenant: the token names its own user
        .filter(pk=payload.get(jwt_settings.USER_ID_CLAIM), is_active=True)
        .first()
    )


def _token_reuse_revoke(*, token: str) -> None:
    """If `token` is a genuine refresh token that was already spent, revoke its family."""
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
    from rest_framework_simplejwt.tokens import UntypedToken

    from accounts.authentication import FAMILY_CLAIM, GENERATION_CLAIM

    try:
        payload = UntypedToken(token).payload  # signature and expiry checked
    except TokenError:
        return  # forged, expired or garbage: no family to protect
    if payload.get("token_type") != "refresh":
        return
    spent = BlacklistedToken.objects.filter(token__jti=payload.get("jti")).exists()
    if not spent:
        return
    family = payload.get(FAMILY_CLAIM, payload.get("jti"))
    with transaction.atomic():
        user = _token_user_locked(payload)
        if user is None or payload.get(GENERATION_CLAIM) != user.token_generation:
            return  # revoked by logout, a password change or deactivation: nothing left to steal
        if _token_family_revoke(user=user, family=family):
            audit_record(company=user.company, actor=None, action="user.token_reuse", obj=user)


def token_refresh(*, token: str) -> dict[str, str]:
    """Spend a refresh token and return the next pair of its family.

    A refresh token is single use. A spent one presented again (a copy in a thief's hands,
    or the legitimate client after the thief used it first) revokes the whole family; the
    user logs in again. Raises KangarooError `token_expired` or `token_invalid`.
    """
    from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.authentication import FAMILY_CLAIM, GENERATION_CLAIM, token_pair_for

    try:
        refresh = RefreshToken(token)  # also checks the deny list
    except ExpiredTokenError:
        raise KangarooError(errors.TOKEN_EXPIRED) from None
    except TokenError:
        _token_reuse_revoke(token=token)
        raise KangarooError(errors.TOKEN_INVALID) from None
    family = refresh.get(FAMILY_CLAIM, refresh["jti"])
    with transaction.atomic():
        # The user's row lock orders rotations and revocations of the user's families.
        user = _token_user_locked(refresh.payload)
        if user is None or refresh.get(GENERATION_CLAIM) != user.token_generation:
            raise KangarooError(errors.TOKEN_INVALID)
        outstanding = OutstandingToken.objects.filter(jti=refresh["jti"]).first()
        if outstanding is None:
            raise KangarooError(errors.TOKEN_INVALID)
        # The deny list's unique key makes exactly one of two racing refreshes win; the
        # loser presented a spent token, which is reuse like any other.
        _, spent_now = BlacklistedToken.objects.get_or_create(token=outstanding)
        if spent_now:
            return token_pair_for(user, family=family)
        if _token_family_revoke(user=user, family=family):
            audit_record(company=user.company, actor=None, action="user.token_reuse", obj=user)
    raise KangarooError(errors.TOKEN_INVALID)


# --- Login throttling -----------------------------------------------------------------------
#
# Three counters, each counted atomically (cache INCR: Redis in production) *before* the
# password is checked, so a burst of concurrent guesses cannot slip past the limit while
# the first ones are still being hashed. A counter holds the attempts that failed plus the
# ones in flight; an attempt refused by the throttle is taken back out, it was never checked.
#
# - (username, client address): hard limit. The guesser is locked out, the account is not.
# - client address: hard limit, so one address cannot try many usernames.
# - username, from every address: past the limit, at most one attempt per backoff period
#   (1 s, 2 s, 4 s, ... up to LOGIN_BACKOFF_MAX), never a hard lock: guessing one account
#   from many addresses is slowed, and its owner is at most asked to wait a moment.
#
# A refused attempt answers 429 whether or not the password was right: a throttled answer
# must not tell a guesser when a guess was right.


# A password hash costs a server thread hundreds of milliseconds of CPU on purpose. At most
# LOGIN_CONCURRENT_HASHES logins of a process are past `login_attempt_start` at once; one
# more is refused at once (503 `login_busy`, Retry-After 1), before it is counted or hashed,
# so a login burst keeps at most that many of the server's threads and device ingest keeps
# the rest. The refusal is the same for a right and a wrong password.

LOGIN_BUSY_RETRY_AFTER = 1


class _HashSlots:
    """Slots for concurrent password checks in this process, taken without waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = 0

    def take(self) -> bool:
        from django.conf import settings

        with self._lock:
            if self.in_use >= settings.LOGIN_CONCURRENT_HASHES:
                return False
            self.in_use += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.in_use = max(0, self.in_use - 1)


login_hash_slots = _HashSlots()


@dataclass
class LoginAttempt:
    """Counted attempt holding a hashing slot; give it back to `login_attempt_finish` once
    the password is checked (or its check failed)."""

    username_key: str
    pair_key: str
    address_key: str | None
    holds_slot: bool = True


def _login_name_key(username: str) -> str:
    # Hashed: any text may arrive as a username, cache keys must stay short and plain.
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]


def _count(key: str, window: int) -> int:
    from django.core.cache import cache

    for _ in range(3):
        if cache.add(key, 0, timeout=window):
            cache.set(f"{key}:until", time.time() + window, timeout=window)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            continue
    raise RuntimeError(f"cache refused counting {key}")


def rate_count(key: str, window: int) -> int:
    """Count one more request under `key` (atomically, in the cache: Redis in production);
    returns the count within `window` seconds of the first. For rate limits of other apps."""
    return _count(key, window)


def _uncount(*keys: str | None) -> None:
    from django.core.cache import cache

    for key in keys:
        if key is None:
            continue
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing to take back
            cache.decr(key)


def _seconds_until(key: str, default: int) -> int:
    from django.core.cache import cache

    until = cache.get(f"{key}:until")
    if until is None:
        return default
    return max(1, math.ceil(until - time.time()))


def login_attempt_start(*, username: str, ip_address: str | None) -> LoginAttempt:
    """Count a login attempt before its password is checked and take a hashing slot; raise
    `login_busy` if every slot is taken, `login_throttled` if the attempt may not be checked
    now (both with `retry_after` seconds). The caller must call `login_attempt_finish`."""
    if not login_hash_slots.take():
        raise KangarooError(errors.LOGIN_BUSY, extra={"retry_after": LOGIN_BUSY_RETRY_AFTER})
    try:
        return _login_attempt_count(username=username, ip_address=ip_address)
    except BaseException:
        login_hash_slots.give_back()
        raise


def _login_attempt_count(*, username: str, ip_address: str | None) -> LoginAttempt:
    from django.conf import settings
    from django.core.cache import cache

    limit, window = settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_WINDOW
    name = _login_name_key(username)
    attempt = LoginAttempt(
        username_key=f"login:user:{name}",
        pair_key=f"login:pair:{name}:{ip_address or '-'}",
        address_key=f"login:ip:{ip_address}" if ip_address else None,
    )
    for_pair = _count(attempt.pair_key, window)
    for_address = _count(attempt.address_key, window) if attempt.address_key else 0
    for_username = _count(attempt.username_key, window)

    def refuse(retry_after: int):
        _uncount(attempt.pair_key, attempt.address_key, attempt.username_key)
        raise KangarooError(errors.LOGIN_THROTTLED, extra={"retry_after": retry_after})

    if for_pair > limit:
        refuse(_seconds_until(attempt.pair_key, window))
    if for_address > limit:
        refuse(_seconds_until(attempt.address_key, window))
    if for_username > limit:
        backoff = min(2 ** min(for_username - limit - 1, 30), settings.LOGIN_BACKOFF_MAX)
        slot_key = f"login:user-slot:{name}"
        if not cache.add(slot_key, 1, timeout=backoff):
            refuse(_seconds_until(slot_key, backoff))
        cache.set(f"{slot_key}:until", time.time() + backoff, timeout=backoff)
    return attempt


def login_attempt_finish(attempt: LoginAttempt, *, succeeded: bool) -> None:
    """A failure stays counted. A success clears the username's counts and takes its own
    attempt back from the address's (an office behind one address logs in all day). The
    attempt's hashing slot is given back either way."""
    from django.core.cache import cache

    if attempt.holds_slot:
        attempt.holds_slot = False
        login_hash_slots.give_back()
    if succeeded:
        cache.delete_many([attempt.pair_key, attempt.username_key])
        _uncount(attempt.address_key)


def password_reset_allowed(*, email: str, ip_address: str | None) -> bool:
    """Whether a reset mail may go out now: at most PASSWORD_RESET_LIMIT per e-mail address
    and PASSWORD_RESET_CLIENT_LIMIT per client address within PASSWORD_RESET_WINDOW.

    Counted for every request, known address or not, and the caller answers the same either
    way, so the limit tells nobody whether an address has an account.
    """
    from django.conf import settings

    window = settings.PASSWORD_RESET_WINDOW
    per_email = _count(f"reset:email:{_login_name_key(email)}", window)
    per_client = _count(f"reset:ip:{ip_address}", window) if ip_address else 0
    return per_email <= settings.PASSWORD_RESET_LIMIT and per_client <= settings.PASSWORD_RESET_CLIENT_LIMIT


def user_authenticate(*, username: str, password: str, ip_address: str | None) -> User:
    """Check an API login under the login throttle (see login_attempt_start)."""
    from django.contrib.auth import authenticate

    attempt = login_attempt_start(username=username, ip_address=ip_address)
    ok = False
    try:
        user = authenticate(username=username, password=password)
        ok = user is not None and (user.company_id is None or user.company.is_active)
    finally:
        login_attempt_finish(attempt, succeeded=ok)
    if not ok:
        raise KangarooError(errors.LOGIN_FAILED)
    return user
