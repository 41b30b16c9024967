from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from subjects.models import Photo


@receiver(post_delete, sender=Photo)
def delete_photo_files(sender, instance: Photo, **kwargs) -> None:
    """Remove a photo's files once its deletion is committed.

    A handler, not the service, because photos are also deleted by cascade (with their
    subject or their company); after commit, because a rolled-back delete must keep them.
    """
    names = [instance.image.name, instance.thumbnail.name]

    def delete_files() -> None:
        for name in names:
            if name:
                instance.image.storage.delete(name)

    transaction.on_commit(delete_files)
