"""Password logins that do not hold a database connection while hashing.

A password hash costs hundreds of milliseconds of CPU on purpose. Django's ModelBackend
reads the user and hashes with the request's connection still checked out of the pool, so
a burst of logins held every pooled connection for the length of its hashes and starved
everything else (device posts waited for the pool, then failed). Here the user is read,
the connection goes back to the pool, and only then is the password hashed; anything
written afterwards (last login, a rehash) takes a connection again for its own query.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connections, router


def release_connection(model) -> None:
    """Give the request's connection back to the pool, unless a transaction needs it."""
    connection = connections[router.db_for_read(model)]
    if not connection.in_atomic_block:
        connection.close()


class ModelBackendReleasingConnection(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        User = get_user_model()
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            user = User._default_manager.get_by_natural_key(username)  # tenant: a login names its user
        except User.DoesNotExist:
            user = None
        release_connection(User)
        if user is None:
            # Hash anyway, so an unknown username takes as long as a wrong password.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
