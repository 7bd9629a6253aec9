from django import forms
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm


class LoginForm(AuthenticationForm):
    """Log in with the account's email address (or, for older accounts, its username)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email or username"


class SignupForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        help_text="We send a link to this address to finish creating your account.",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class SignupFinishForm(SetPasswordForm):
    """The password of the account being created (``user`` is unsaved until the service runs)."""


class BuyForm(forms.Form):
    price_id = forms.CharField(max_length=255)
    quantity = forms.IntegerField(min_value=1, max_value=99, initial=1)
    # Rendered once per page view: a second submit of the same form is the same purchase.
    request_token = forms.CharField(min_length=16, max_length=64)
