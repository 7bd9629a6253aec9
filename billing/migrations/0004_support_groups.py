"""The support console's two staff groups, Support and Billing admin (billing.permissions)."""

from django.db import migrations

from billing.permissions import groups_sync_migration


def remove_groups(apps, schema_editor):
    from billing.permissions import GROUPS

    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_console_audit_and_resync_jobs"),
        ("orders", "0002_drop_receipt_url"),
        ("djstripe", "0003_2_11"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(groups_sync_migration, remove_groups)]
