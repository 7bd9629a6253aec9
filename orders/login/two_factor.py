"""Two-factor for staff (django-otp): an authenticator app's code after the password.

With ``settings.STAFF_TWO_FACTOR`` on, every staff session must be verified before any admin
page (``config.admin.ShopAdminSite.has_permission``). A staff member without an authenticator
enrols on their first sign-in (a TOTP device, confirmed with a code), and gets ten backup
codes, each good once, shown once. A person who may delete authenticators
(``RESET_PERMISSION``: superusers, and whoever is given it) can reset another staff member's
two-factor; they enrol again at their next sign-in. Each reset is in the audit log.
"""

from __future__ import annotations

import base64

import django_otp
import segno
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.console import audit
from billing.models import AuditEntry

RESET_PERMISSION = "otp_totp.delete_totpdevice"
BACKUP_CODES = 10
AUTHENTICATOR = "Authenticator app"
BACKUP = "Backup codes"


def required(user: AbstractBaseUser) -> bool:
    """Whether this account's sign-in is complete only with a second factor."""
    return settings.STAFF_TWO_FACTOR and user.is_active and user.is_staff


def verified(request: HttpRequest) -> bool:
    """Whether this session passed its second factor (``OTPMiddleware`` sets ``is_verified``)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified and is_verified())


def pending(request: HttpRequest) -> bool:
    """A staff member signed in with the password who has yet to give a code."""
    user = request.user
    return user.is_authenticated and required(user) and not verified(request)


def enrolled(user: AbstractBaseUser) -> bool:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


def enrolment_device(*, user: AbstractBaseUser) -> TOTPDevice:
    """The authenticator being set up: the same one until confirmed, however often the page
    is opened (a new secret each time would void a QR code already scanned)."""
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


def secret_text(device: TOTPDevice) -> str:
    """The key as an authenticator app asks for it when typed: base32, in groups of four."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def qr_data_uri(device: TOTPDevice) -> str:
    """The otpauth:// URL as a QR code (SVG), for an <img> (the policy allows data: images)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)


def enrolment_confirm(*, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the authenticator with a code from it; the new backup codes, or None."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if device.confirmed or not device.verify_token(code):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return backup_codes_create(user=device.user)


def backup_codes_create(*, user: AbstractBaseUser) -> list[str]:
    """Ten new backup codes, replacing any earlier ones (the database keeps them; each is
    deleted when used)."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=BACKUP, confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def code_verify(*, user: AbstractBaseUser, code: str) -> Device | None:
    """The device that accepts ``code``: six digits are the authenticator's, anything else a
    backup code (spent by accepting it). Each device throttles its own failures too."""
    code = "".join(code.split()).lower()
    model = TOTPDevice if code.isdigit() and len(code) == 6 else StaticDevice
    for device in model.objects.devices_for_user(user, confirmed=True):
        found = django_otp.verify_token(user, device.persistent_id, code)
        if found is not None:
            return found
    return None


def backup_codes_left(*, user: AbstractBaseUser) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def two_factor_reset(*, actor: AbstractBaseUser, user: AbstractBaseUser) -> int:
    """Remove ``user``'s authenticators and backup codes (they enrol again at their next
    sign-in, and sessions they verified with them are no longer verified); audited.

    Only for someone with ``RESET_PERMISSION``, and not on oneself: a verified session would
    otherwise drop its own second factor. Returns the number of devices removed.
    """
    audit.require(actor, [RESET_PERMISSION])
    if actor.pk == user.pk:
        raise ValueError("Reset your own two-factor through another administrator.")
    with transaction.atomic():
        removed = sum(
            model.objects.filter(user=user).delete()[1].get(model._meta.label, 0)
            for model in (TOTPDevice, StaticDevice)
        )
        audit.entry(
            actor=actor,
            action=AuditEntry.Action.TWO_FACTOR_RESET,
            object_type="user",
            stripe_id=user.get_username(),
            result=AuditEntry.Result.DONE if removed else AuditEntry.Result.UNCHANGED,
            message=f"two-factor reset for {user.get_username()}: {removed} device(s) removed",
        )
    return removed
