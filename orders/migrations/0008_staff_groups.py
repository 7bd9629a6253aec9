"""The console's staff groups, Support and Billing admin (``orders.staff``): brought to their
definition now that every model they name exists (billing's permissions included)."""

from django.db import migrations

from orders.staff import groups_sync_migration


def remove_groups(apps, schema_editor):
    from orders.staff import GROUPS

    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_console_at_scale"),
        ("billing", "0009_console_at_scale"),
        ("djstripe", "0003_2_11"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(groups_sync_migration, remove_groups)]
