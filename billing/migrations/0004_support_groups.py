"""Once the console's two staff groups (Support and Billing admin). They name the shop's
permissions as well as billing's, so the shop owns them: ``orders.staff``, created by
``orders/migrations/0005`` and ``0008``. Billing's migrations never import the shop."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_console_audit_and_resync_jobs"),
        ("djstripe", "0003_2_11"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = []
