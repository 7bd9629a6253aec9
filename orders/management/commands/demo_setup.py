"""Seed the demo: a superuser with a printed password (kept in .demo/ so reruns can show it)."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_DIR = Path(settings.BASE_DIR) / ".demo"


def _demo_user(*, username: str, email: str, superuser: bool) -> tuple[str, str]:
    """Create the user once; return its username and the password saved beside the demo."""
    secret_file = DEMO_DIR / f"{username}.password"
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None or not secret_file.exists():
        password = secrets.token_urlsafe(12)
        if user is None:
            create = user_model.objects.create_superuser if superuser else user_model.objects.create_user
            user = create(username=username, email=email, password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        DEMO_DIR.mkdir(exist_ok=True)
        secret_file.write_text(password)
        secret_file.chmod(0o600)
    return username, secret_file.read_text()


class Command(BaseCommand):
    help = "Create the demo users (and later the demo catalog); print the logins."

    def handle(self, *args, **options):
        admin = _demo_user(username="admin", email="admin@example.com", superuser=True)
        base = settings.SITE_URL
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(f"  admin:    {base}/{settings.ADMIN_URL}  login {admin[0]} / {admin[1]}")
