from django.db.models.signals import post_delete
from django.dispatch import receiver

from kangaroo.jobs import enqueue
from kangaroo.media import media_delete_on_commit
from subjects.domain_signals import photo_added
from subjects.models import Consent, Photo


@receiver(post_delete, sender=Photo)
def delete_photo_files(sender, instance: Photo, **kwargs) -> None:
    """Remove a photo's files once its deletion is committed.

    A handler, not the service, because photos are also deleted by cascade (with their
    subject or their company); after commit, because a rolled-back delete must keep them.
    """
    media_delete_on_commit([instance.image.name, instance.thumbnail.name])


@receiver(photo_added)
def enrol_added_photos(sender, *, company, ids, **kwargs) -> None:
    """Every photo added, from any entry point, is enrolled by a job after commit: one job a
    photo, so a team's photos spread over every worker."""
    from subjects import jobs

    for photo_id in ids:
        enqueue(jobs.photo_enrol, company.pk, photo_id)


@receiver(post_delete, sender=Consent)
def delete_consent_evidence(sender, instance: Consent, **kwargs) -> None:
    """A consent's signed form goes once its row's deletion (with its subject or company) is
    committed, like a photo's files."""
    media_delete_on_commit([instance.evidence.name])
