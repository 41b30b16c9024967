"""Closing live connections whose credentials ended.

A websocket authenticates once, when it opens; without this it would keep receiving a
company's events (names, fresh image links) after the session that opened it logged out,
after its user was deactivated, or after its TV box's key was revoked. So every socket
also joins a group per principal it was opened with, and the moment a principal ends we
send that group a `principal.revoked` message, on which each socket closes with 4410
(kangaroo.consumers.CLOSE_REVOKED):

- `session.<hash of the session key>`: the admin's session logged out (Django's
  `user_logged_out`); only that session's sockets close.
- `user.<id>`: the user was deactivated or deleted, or their password was changed or set
  (`accounts.signals.user_sessions_ended`); every socket of the user closes.
- `device.<kind>.<id>`: the device's key was rotated or revoked, or the device deleted
  (`devices.signals.device_key_changed`).

The lower apps only announce; this module (events builds on them) listens. A message lost
while the channel layer is down is covered by each socket re-checking its principal every
LIVE_RECHECK_SECONDS (events.consumers).
"""

from __future__ import annotations

import hashlib
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from accounts.signals import user_sessions_ended
from devices.signals import device_key_changed

logger = logging.getLogger(__name__)

REVOKED_MESSAGE = {"type": "principal.revoked"}


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    # The key itself is a credential: only its digest goes to the channel layer.
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def device_group(kind: str, device_id: int) -> str:
    return f"device.{kind}.{device_id}"


def revoke(group: str) -> None:
    """Close every live socket in `group`. Never raises: the change that ended the
    principal is committed already; a socket this misses finds out at its next re-check."""
    try:
        async_to_sync(get_channel_layer().group_send)(group, REVOKED_MESSAGE)
    except Exception:
        logger.exception("Closing the live sockets of %s failed; they close at their next re-check", group)


@receiver(user_logged_out, dispatch_uid="events.revocation.session")
def _session_logged_out(sender, request=None, user=None, **kwargs) -> None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        # Django sends this signal before it flushes the session. A closed page reloads at
        # once, and must find its session gone, not race the flush and stay signed in.
        session.delete(key)
        revoke(session_group(key))


@receiver(user_sessions_ended, dispatch_uid="events.revocation.user")
def _user_sessions_ended(sender, user_id: int, **kwargs) -> None:
    revoke(user_group(user_id))


@receiver(device_key_changed, dispatch_uid="events.revocation.device")
def _device_key_changed(sender, device_kind: str, device_id: int, **kwargs) -> None:
    revoke(device_group(device_kind, device_id))
