import hashlib

from django import forms
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm

from orders import timezones


class LoginForm(AuthenticationForm):
    """Log in with the account's email address (or, for older accounts, its username)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email or username"


class TwoFactorCodeForm(forms.Form):
    """A code from the authenticator app, or one of the backup codes."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


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

    def clean(self) -> dict:
        """The purchase's identity is the form view *and* what it asks for: a browser's Back
        can bring the old form (and token) back, and a changed quantity is a new purchase."""
        data = super().clean()
        if not self.errors:
            raw = f"{data['request_token']}:{data['price_id']}:{data['quantity']}"
            data["request_token"] = hashlib.sha256(raw.encode()).hexdigest()[:48]
        return data


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=timezones.grouped_choices,
        help_text="Order times are shown in this time zone.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A zone saved or reported under an old alias stays choosable as it is.
        current = self.initial.get("time_zone") or self.data.get("time_zone")
        if current and current not in timezones.canonical() and timezones.zone(current):
            field = self.fields["time_zone"]
            field.choices = [("", [(current, current.replace("_", " "))]), *field.choices]
