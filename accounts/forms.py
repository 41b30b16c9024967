import logging

from django.contrib.auth.forms import PasswordResetForm

logger = logging.getLogger(__name__)


class SafePasswordResetForm(PasswordResetForm):
    """Password reset that answers the same whatever happens after the form is valid.

    Django already gives the same page for known and unknown addresses; a mail server that
    is down must not turn a known address into a 500 either, which would tell an attacker
    that the address exists. The failure is logged for the operators instead.
    """

    def send_mail(
        self, subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name=None
    ):
        try:
            super().send_mail(
                subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name
            )
        except Exception:
            logger.exception("Sending the password-reset e-mail failed")
