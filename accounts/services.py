"""Writes on companies, users and the audit log. Every write that matters is audited."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.db.models.fields.files import FieldFile
from django.utils.duration import duration_iso_string

from accounts.models import AuditLog, Company, Role, User
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


def audit_record_many(
    *,
    company: Company,
    actor: User | None,
    entries: Iterable[tuple[str, models.Model, dict[str, Any] | None]],
) -> int:
    """Append one audit entry per (action, object, changes), as `audit_record` would, written
    in bulk (one INSERT per 2,000 entries): an import of 100,000 rows is audited row by row
    without 100,000 round trips. Returns how many entries were written."""
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
    AuditLog.objects.bulk_create(rows, batch_size=2000)  # tenant: each entry built with `company`
    return len(rows)


def company_create(*, name: str, slug: str, time_zone: str = "Asia/Taipei", actor: User | None = None) -> Company:
    company = Company(name=name, slug=slug, time_zone=time_zone)
    company.full_clean()
    with transaction.atomic():
        company.save()
        audit_record(company=company, actor=actor, action="company.create", obj=company)
    return company


COMPANY_EDITABLE_FIELDS = ("name", "time_zone", "work_start", "work_end")


@transaction.atomic
def company_update(*, company: Company, actor: User | None, **data: Any) -> Company:
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
    return company


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise KangarooError(errors.PASSWORD_TOO_WEAK, fields={"password": list(exc.messages)}) from None


def _check_user_unique(*, company: Company, username: str, email: str, exclude_pk=None) -> None:
    taken = User.objects.filter(username__iexact=username)  # tenant: usernames are global logins
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


@transaction.atomic
def user_password_set(*, company: Company, actor: User | None, user: User, password: str) -> None:
    """An owner sets another user's password; that user's tokens are revoked."""
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


def _failure_keys(username: str, ip_address: str | None) -> list[str]:
    keys = [f"login-fail:user:{username.strip().lower()}"]
    if ip_address:
        keys.append(f"login-fail:ip:{ip_address}")
    return keys


def login_locked(*, username: str, ip_address: str | None) -> bool:
    """True after repeated failures for this username or from this address.

    Failures are counted per username and per client address, so guessing one account's
    password from many addresses and many accounts' passwords from one address are both
    slowed. While locked, even the right password is refused: otherwise the lock would tell
    an attacker when a guess was right.
    """
    from django.conf import settings
    from django.core.cache import cache

    counts = cache.get_many(_failure_keys(username, ip_address))
    return any(count >= settings.LOGIN_FAILURE_LIMIT for count in counts.values())


def login_failed(*, username: str, ip_address: str | None) -> None:
    from django.conf import settings
    from django.core.cache import cache

    for key in _failure_keys(username, ip_address):
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
        cache.incr(key)


def login_succeeded(*, username: str) -> None:
    from django.core.cache import cache

    cache.delete(_failure_keys(username, None)[0])


def user_authenticate(*, username: str, password: str, ip_address: str | None) -> User:
    """Check an API login; refuse for a while after repeated failures (see login_locked)."""
    from django.conf import settings
    from django.contrib.auth import authenticate

    if login_locked(username=username, ip_address=ip_address):
        raise KangarooError(errors.LOGIN_THROTTLED, extra={"retry_after": settings.LOGIN_FAILURE_WINDOW})
    user = authenticate(username=username, password=password)
    if user is None or (user.company_id is not None and not user.company.is_active):
        login_failed(username=username, ip_address=ip_address)
        raise KangarooError(errors.LOGIN_FAILED)
    login_succeeded(username=username)
    return user
