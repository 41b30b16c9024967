"""What the accounts app announces to the apps above it (which it must not import)."""

from django.db import transaction
from django.db.models.signals import post_delete, pre_save
from django.dispatch import Signal, receiver

from accounts.models import User

# Sent after commit, with `user_id`, when every session of a user must end at once: the
# user was deactivated or deleted, or their password changed. Listeners close what those
# sessions hold open (the live pages' websockets).
user_sessions_ended = Signal()


def _announce_sessions_ended(user_id: int) -> None:
    transaction.on_commit(lambda: user_sessions_ended.send(sender=User, user_id=user_id))


# Announced from the model, not from each service: a password also changes through the
# admin's password forms, a password reset, a re-hash at login or `manage.py
# changepassword`, and a user is deactivated by platform staff in the admin too.
@receiver(pre_save, sender=User, dispatch_uid="accounts.sessions_end_on_save")
def _sessions_end_with_password_or_access(sender, instance: User, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return
    before = User.objects.filter(pk=instance.pk).values("password", "is_active").first()  # tenant: the user's own row
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        _announce_sessions_ended(instance.pk)


@receiver(post_delete, sender=User, dispatch_uid="accounts.sessions_end_on_delete")
def _sessions_end_with_the_user(sender, instance: User, **kwargs) -> None:
    _announce_sessions_ended(instance.pk)
