from django.db.models.signals import post_save
from django.dispatch import receiver

from devices.models import DeviceStatusChange
from events.services import event_from_status_change


@receiver(post_save, sender=DeviceStatusChange)
def status_change_becomes_an_event(sender, instance: DeviceStatusChange, created: bool, **kwargs) -> None:
    # A receiver, so the devices app stays unaware of events (events build on devices).
    if created:
        event_from_status_change(instance)
