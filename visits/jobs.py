"""Jobs of visits: take ids, load, call a service."""

from accounts.models import Company
from visits import services


def visit_invitation_send(company_id: int, visit_id: int) -> None:
    """Queued after commit by `visit_create` and `visit_invitation_resend`."""
    company = Company.objects.filter(pk=company_id).first()
    if company is not None:
        services.visit_invitation_deliver(company=company, visit_id=visit_id)


def visit_check_in_notify(company_id: int, visit_id: int) -> int:
    """Queued after commit by `visit_check_in`: the host hears of the arrival (once per visit)."""
    company = Company.objects.filter(pk=company_id).first()
    return services.visit_check_in_host_tell(company=company, visit_id=visit_id) if company is not None else 0


def visits_windows_follow() -> int:
    """Periodic: visitors whose window ended move on to their next visit's."""
    return services.visits_windows_follow()
