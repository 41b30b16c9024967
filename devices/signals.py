"""What the devices app announces to the apps above it (which it must not import)."""

from django.dispatch import Signal

# Sent after commit, with `device_kind` and `device_id`, when a device's key stopped
# working: rotated, revoked, or the device deleted. Listeners close what the old key
# holds open (a TV box's websocket).
device_key_changed = Signal()
