"""Seed the demo: users with printed passwords (kept in .demo/ so reruns can show them), a
catalog in the emulator mirrored locally, and a webhook endpoint pointing at this site."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from djstripe.models import WebhookEndpoint

from billing import stripe_api
from billing.webhooks.endpoints import WEBHOOK_PATH, webhook_endpoint_create
from orders.demo import demo_catalog_seed
from orders.demo_files import demo_downloads_write
from orders.references import references_fill
from orders.services import catalog_sync
from orders.staff import BILLING_ADMIN, SUPPORT

DEMO_DIR = Path(settings.DEMO_DIR)


def _demo_user(
    *, username: str, email: str, superuser: bool, group: str | None = None
) -> tuple[str, str]:
    """Create the user once; return its username and the password saved beside the demo.

    With ``group``, a staff user in that support console group (created by migration)."""
    secret_file = DEMO_DIR / f"{username}.password"
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None or not secret_file.exists():
        password = secrets.token_urlsafe(12)
        if user is None:
            create = (
                user_model.objects.create_superuser if superuser else user_model.objects.create_user
            )
            user = create(username=username, email=email, password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        DEMO_DIR.mkdir(exist_ok=True)
        secret_file.write_text(password)
        secret_file.chmod(0o600)
    if group is not None:
        user_model.objects.filter(pk=user.pk).update(is_staff=True)
        user.groups.set([Group.objects.get(name=group)])
    return username, secret_file.read_text()


def _webhook_endpoint(base: str) -> tuple[WebhookEndpoint, bool]:
    """This site's endpoint, registered in Stripe once (reused while Stripe still has it)."""
    prefix = f"{base}{WEBHOOK_PATH}"
    remote = {
        e.id
        for e in stripe_api.list_all(object_type="webhook_endpoint")
        if e.url.startswith(prefix)
    }
    local = WebhookEndpoint.objects.filter(id__in=remote).first()
    if local is not None:
        return local, False
    return webhook_endpoint_create(base_url=base, description="make demo"), True


class Command(BaseCommand):
    help = "Create the demo users, the demo catalog and the webhook endpoint; print the logins."

    def handle(self, *args, **options):
        admin = _demo_user(username="admin", email="admin@example.com", superuser=True)
        customer = _demo_user(username="customer", email="customer@example.com", superuser=False)
        support = _demo_user(
            username="support", email="support@example.com", superuser=False, group=SUPPORT
        )
        billing = _demo_user(
            username="billing", email="billing@example.com", superuser=False, group=BILLING_ADMIN
        )
        created = demo_catalog_seed()
        counts = catalog_sync()
        # The digital products' files, so a demo customer can download what they buy.
        files = demo_downloads_write()
        # A demo kept from before the order references existed: its orders tied now (cheap).
        references_fill()
        base = settings.SITE_URL
        endpoint, new = _webhook_endpoint(base)
        if options["verbosity"] == 0:
            return  # make demo prints its own summary, logins included
        self.stdout.write(
            f"Catalog: {created} new demo products; mirrored {counts['product']} products, "
            f"{counts['price']} prices; {files} download files written."
        )
        self.stdout.write(
            f"Webhook endpoint {endpoint.id} ({'new' if new else 'existing'}): {endpoint.url}"
        )
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(f"  shop:     {base}/  login {customer[0]} / {customer[1]} (or sign up)")
        self.stdout.write(f"  admin:    {base}/{settings.ADMIN_URL}  login {admin[0]} / {admin[1]}")
        self.stdout.write(
            f"            support staff {support[0]} / {support[1]} ({SUPPORT}), "
            f"{billing[0]} / {billing[1]} ({BILLING_ADMIN})"
        )
        self.stdout.write("  pay with card 4242 4242 4242 4242 (4000 0000 0000 0002 is declined)")
