from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from devices.models import DeviceStatusChange
from events.models import Event
from events.services import event_from_status_change
from kangaroo.media import media_delete_on_commit
from subjects.models import Subject


@receiver(post_save, sender=DeviceStatusChange)
def status_change_becomes_an_event(sender, instance: DeviceStatusChange, created: bool, **kwargs) -> None:
    # A receiver, so the devices app stays unaware of events (events build on devices).
    if created:
        event_from_status_change(instance)


@receiver(pre_delete, sender=Subject)
def delete_subject_snapshots(sender, instance: Subject, **kwargs) -> None:
    """A subject's events lose their snapshots when the subject is deleted.

    A snapshot of a recognised person is a picture of their face: biometric data of that
    subject, which goes with them. The event rows stay, unlinked from the subject (the
    foreign key is SET_NULL) and without a snapshot: they are the company's record of who
    passed which door, with the name and job number copied at the time, so attendance
    history reads the same. Before the delete, while the events still name the subject; in
    the deleting transaction, so a rolled-back delete keeps both rows and files.
    """
    events = Event.objects.filter(  # tenant: the deleted subject's own company
        company_id=instance.company_id, subject_id=instance.pk
    ).exclude(snapshot="")
    names = list(events.values_list("snapshot", flat=True))
    if names:
        events.update(snapshot="")
        media_delete_on_commit(names)
