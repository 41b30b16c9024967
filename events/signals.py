from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from devices.models import DeviceStatusChange
from events.models import Event, UnknownPerson, UnknownSnapshot
from events.services import event_from_status_change
from kangaroo.media import media_delete_on_commit
from subjects.domain_signals import consent_withdrawn
from subjects.models import Subject


@receiver(post_save, sender=DeviceStatusChange)
def status_change_becomes_an_event(sender, instance: DeviceStatusChange, created: bool, **kwargs) -> None:
    # A receiver, so the devices app stays unaware of events (events build on devices).
    if created:
        event_from_status_change(instance)


def erase_subject_snapshots(*, company_id: int, subject_ids: list[int]) -> None:
    """Delete every picture of these subjects' faces the events app holds: their events'
    snapshots, and the copies an unknown person kept of any of those events (with the
    unknown person, if nothing else is left of them). The event rows stay, without snapshot
    and unlinked from unknown people: they are the company's record of who passed which
    door. Files go once the transaction commits, so a rollback keeps both rows and files."""
    events = Event.objects.for_company(company_id).filter(subject_id__in=subject_ids)
    copies = UnknownSnapshot.objects.for_company(company_id).filter(event__in=events)
    people = set(copies.values_list("person_id", flat=True)) | set(
        events.filter(unknown_person__isnull=False).values_list("unknown_person_id", flat=True)
    )
    names = list(events.exclude(snapshot="").values_list("snapshot", flat=True))
    names += list(copies.values_list("image", flat=True))
    copies.delete()
    events.exclude(snapshot="").update(snapshot="")
    events.filter(unknown_person__isnull=False).update(unknown_person=None)
    if people:
        # An unknown person with neither a snapshot nor a sighting left was made of these
        # faces only (its representative embedding too): it goes.
        left = UnknownSnapshot.objects.for_company(company_id).values("person_id")
        seen = Event.objects.for_company(company_id).filter(unknown_person__isnull=False).values("unknown_person_id")
        UnknownPerson.objects.for_company(company_id).filter(pk__in=people).exclude(pk__in=left).exclude(
            pk__in=seen
        ).delete()
    media_delete_on_commit(names)


@receiver(pre_delete, sender=Subject)
def delete_subject_snapshots(sender, instance: Subject, **kwargs) -> None:
    """A subject's events lose their snapshots when the subject is deleted.

    A snapshot of a recognised person is a picture of their face: biometric data of that
    subject, which goes with them (`erase_subject_snapshots`). Before the delete, while the
    events still name the subject (the foreign key is SET_NULL); in the deleting
    transaction. The events keep the name and job number copied at the time, so attendance
    history reads the same.
    """
    erase_subject_snapshots(company_id=instance.company_id, subject_ids=[instance.pk])


@receiver(consent_withdrawn)
def delete_withdrawn_snapshots(sender, *, company, ids, **kwargs) -> None:
    """Consent withdrawn: the subjects' snapshots go at once, as they would with the subject."""
    erase_subject_snapshots(company_id=company.pk, subject_ids=list(ids))
