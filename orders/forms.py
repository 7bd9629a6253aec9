import hashlib

from django import forms
from django.contrib.auth.forms import UserCreationForm

from orders import timezones


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="For receipts and password resets.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


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
        choices=[(name, name.replace("_", " ")) for name in timezones.names()],
        help_text="Order times are shown in this time zone.",
    )
