"""Who may call what: members of a company read; admins and owners write; owners manage."""

from rest_framework import permissions

from kangaroo import errors


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


class IsAuthenticatedUser(permissions.BasePermission):
    """Any signed-in user, whatever the role: for one's own password and logout."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_active)
