"""The support console's two staff groups, Support and Billing admin (billing.permissions)."""

from django.contrib.auth.management import create_permissions
from django.contrib.contenttypes.management import create_contenttypes
from django.db import migrations

from billing.permissions import groups_sync


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); the groups need
    # them now, so create them for every app first (idempotent).
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_contenttypes(app_config, verbosity=0, apps=apps)
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    groups_sync(apps=apps)


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

    operations = [migrations.RunPython(create_groups, remove_groups)]
