from django.db.models.signals import post_delete
from django.dispatch import receiver

from kangaroo.media import media_delete_on_commit
from subjects.models import Photo


@receiver(post_delete, sender=Photo)
def delete_photo_files(sender, instance: Photo, **kwargs) -> None:
    """Remove a photo's files once its deletion is committed.

    A handler, not the service, because photos are also deleted by cascade (with their
    subject or their company); after commit, because a rolled-back delete must keep them.
    """
    media_delete_on_commit([instance.image.name, instance.thumbnail.name])
