from django import forms
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="For receipts and password resets.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class BuyForm(forms.Form):
    price_id = forms.CharField(max_length=255)
    quantity = forms.IntegerField(min_value=1, max_value=99, initial=1)
    # Rendered once per page view: a second submit of the same form is the same purchase.
    request_token = forms.CharField(min_length=16, max_length=64)
