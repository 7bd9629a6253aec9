"""Log in with a username or with the account's email address, in any case."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class AccountBackend(ModelBackend):
    """ModelBackend that also finds the user by email (unique, case-insensitive).

    A login for an unknown name still runs the password hasher once, as ModelBackend does, so
    the time taken does not tell whether the account exists.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if not username or password is None:
            return None
        users = user_model._default_manager
        user = users.filter(username=username).first()
        if user is None and "@" in username:
            user = users.filter(email__iexact=username.strip()).first()
        if user is None:
            user_model().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
