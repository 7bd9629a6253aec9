"""One account per email address, whatever its case: a unique index on LOWER(auth_user.email).

auth.User is Django's model, so the index is created in SQL (PostgreSQL and SQLite both support
expression and partial indexes); accounts without an address (email = '') are left out.
"""

from django.db import migrations
from django.db.models import Count
from django.db.models.functions import Lower

INDEX = "orders_user_email_ci_uniq"
CREATE_INDEX = f"CREATE UNIQUE INDEX {INDEX} ON auth_user (LOWER(email)) WHERE email <> ''"
DROP_INDEX = f"DROP INDEX {INDEX}"


def refuse_duplicate_emails(apps, schema_editor):
    User = apps.get_model("auth", "User")
    duplicates = list(
        User.objects.exclude(email="")
        .values(address=Lower("email"))
        .annotate(accounts=Count("id"))
        .filter(accounts__gt=1)
        .values_list("address", flat=True)[:20]
    )
    if duplicates:
        raise RuntimeError(
            "Several accounts share an email address (ignoring case): "
            + ", ".join(duplicates)
            + ". Give each account its own address (or clear it) in the admin, then migrate again."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_drop_receipt_url"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(refuse_duplicate_emails, migrations.RunPython.noop),
        migrations.RunSQL(CREATE_INDEX, DROP_INDEX),
    ]
