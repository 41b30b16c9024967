"""Who may call what: members of a company read; admins and owners write; owners manage."""

from rest_framework import permissions

from kangaroo import errors
from kangaroo.errors import KangarooError


def key_scope_allows(request, view) -> bool:
    """A company API key (a principal with `key_scopes`) may call a view only with the scope
    the view declares for the method (`api_key_scopes = {"read": ..., "write": ...}`); a view
    without one is for people only. Anyone else is not concerned."""
    scopes = getattr(request.user, "key_scopes", None)
    if scopes is None:
        return True
    declared = getattr(view, "api_key_scopes", None) or {}
    needed = declared.get("read" if request.method in permissions.SAFE_METHODS else "write")
    return needed is not None and needed in scopes


class IsCompanyUser(permissions.BasePermission):
    """An active user of a company, any role, any method.

    Platform staff without a company use the admin; the API always acts for one company.
    """

    message = errors.PERMISSION_DENIED.message
    code = errors.PERMISSION_DENIED.code

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if user.company_id is None:
            self.message, self.code = errors.NO_COMPANY.message, errors.NO_COMPANY.code
            return False
        if not key_scope_allows(request, view):
            self.message, self.code = errors.API_KEY_SCOPE_MISSING.message, errors.API_KEY_SCOPE_MISSING.code
            return False
        return True


class IsCompanyMember(IsCompanyUser):
    """Reads for every role; writes for admins and owners."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in permissions.SAFE_METHODS or request.user.can_write


class CanManageUsers(IsCompanyUser):
    """Reads for every role; writes for owners only."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in permissions.SAFE_METHODS or request.user.can_manage_users


class IsCompanyAdmin(IsCompanyUser):
    """Admins and owners only, reads included: for settings that hold credentials (a webhook
    URL often is one: chat and automation services take whoever knows it)."""

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.user.can_write


class IsAuthenticatedUser(permissions.BasePermission):
    """Any signed-in user, whatever the role: for one's own password and logout."""

    message = errors.API_KEY_SCOPE_MISSING.message
    code = errors.API_KEY_SCOPE_MISSING.code

    def has_permission(self, request, view) -> bool:
        user = request.user
        # One's own password and logout are a person's: never an API key's.
        return bool(user and user.is_authenticated and user.is_active) and getattr(user, "key_scopes", None) is None


class CanViewBiometrics(IsCompanyUser):
    """Owners and admins: faces (photos, snapshots, a person's access export) are biometric
    data, which viewers do not see (`User.can_view_biometrics`). Checked on the object
    (`check_object_permissions`), so another company's object answers 404 to everyone, as
    for any other read."""

    def has_object_permission(self, request, view, obj) -> bool:
        return bool(getattr(request.user, "can_view_biometrics", False))


def face_view_check(request) -> None:
    """Raise `biometrics_not_permitted` (403) unless the requester may see faces. Call it
    after the company check, so another company's picture answers 404 to everyone."""
    if not getattr(request.user, "can_view_biometrics", False):
        raise KangarooError(errors.BIOMETRICS_NOT_PERMITTED)
