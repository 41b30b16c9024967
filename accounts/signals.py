"""What the accounts app announces to the apps above it (which it must not import)."""

from django.dispatch import Signal

# Sent after commit, with `user_id`, when every session of a user must end at once: the
# user was deactivated or deleted, or their password was changed or set. Listeners close
# what those sessions hold open (the live pages' websockets).
user_sessions_ended = Signal()
