"""The support console's two staff groups, Support and Billing admin: the shop's permissions on its
orders and the Stripe boundary's (``billing.permissions``).

The groups are created by data migrations (``orders/migrations/0008_staff_groups.py``, and again
by each migration adding a model they name) calling ``groups_sync_migration``; tests run without
migrations and call ``groups_sync`` themselves. Re-running it brings a group back to exactly
this definition.
"""

from __future__ import annotations

from django.apps import apps as global_apps

from billing import types
from billing.permissions import (
    EDIT_LINK_METADATA,
    EDIT_METADATA,
    MANAGE_WEBHOOK_ENDPOINTS,
    REPROCESS,
    RESYNC,
)

SUPPORT = "Support"
BILLING_ADMIN = "Billing admin"

RESOLVE_PAYMENT = "orders.resolve_orderpayment"
# Refunds: any amount, and approving Support's requests (Billing admin); up to the approval
# threshold, and requesting more (Support). Notes on disputes (both).
REFUND = "orders.refund"
REQUEST_REFUND = "orders.request_refund"
NOTE_DISPUTE = "orders.note_orderdispute"
# Custom permissions by the model declaring them (a default permission names it itself).
PERMISSION_MODELS = {
    RESOLVE_PAYMENT: "orderpayment",
    REFUND: "orderrefund",
    REQUEST_REFUND: "orderrefund",
    NOTE_DISPUTE: "orderdispute",
}

# The mirrored Stripe objects support reads (dj-stripe model names).
STRIPE_OBJECT_MODELS = tuple(t.model.lower() for t in types.TYPES if t.support_reads)

SUPPORT_PERMISSIONS = (
    "orders.view_order",
    "orders.view_orderitem",
    "orders.view_orderhistory",
    "orders.view_orderpayment",
    "orders.view_orderrefund",
    "orders.view_orderdispute",
    REQUEST_REFUND,
    NOTE_DISPUTE,
    *(f"djstripe.view_{model}" for model in STRIPE_OBJECT_MODELS),
    "billing.view_inboundevent",
    "billing.view_webhookdelivery",
    "billing.view_objectsync",
    "billing.view_auditentry",
    "billing.view_resyncjob",
    # the last `stripe_reconcile` report: orders and Stripe objects that disagree
    "billing.view_reconcilereport",
    EDIT_METADATA,
    RESYNC,
)

BILLING_ADMIN_PERMISSIONS = (
    *SUPPORT_PERMISSIONS,
    EDIT_LINK_METADATA,
    REPROCESS,
    MANAGE_WEBHOOK_ENDPOINTS,
    RESOLVE_PAYMENT,
    REFUND,
    "djstripe.view_webhookendpoint",
    # what the operators' commands and webhook intake leave for them to read
    "billing.view_backfillrun",
    "billing.view_backfillprogress",
    "billing.view_backfillfailure",
    "billing.view_webhookrejectcount",
    "billing.view_webhookrejectsample",
)

GROUPS: dict[str, tuple[str, ...]] = {
    SUPPORT: SUPPORT_PERMISSIONS,
    BILLING_ADMIN: BILLING_ADMIN_PERMISSIONS,
}


def groups_sync(*, apps=global_apps) -> dict[str, object]:
    """Create or update the console's groups to hold exactly their permissions.

    ``apps`` is the migration's historical registry when called from a migration. There, a
    permission of a model that does not exist yet is left out: the migration that creates the
    model syncs the groups again (``groups_sync_migration``). Outside migrations every
    permission must exist.
    """
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    groups = {}
    for name, wanted in GROUPS.items():
        found = {}
        for perm in wanted:
            app_label, codename = perm.split(".", 1)
            found[perm] = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
        missing = sorted(
            perm
            for perm, obj in found.items()
            if obj is None and (apps is global_apps or _model_exists(apps, perm))
        )
        if missing:
            raise LookupError(f"permissions missing for group {name!r}: {', '.join(missing)}")
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.set(obj for obj in found.values() if obj is not None)
        groups[name] = group
    return groups


def groups_sync_migration(apps, schema_editor) -> None:
    """A data migration's step: the permissions of every model so far, then the groups.

    Permissions are normally created after all migrations (post_migrate); the groups need
    them now, so they are created here first (idempotent). A migration that adds a model
    the groups name runs this again.
    """
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_contenttypes(app_config, verbosity=0, apps=apps)
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    groups_sync(apps=apps)


def _model_exists(apps, perm: str) -> bool:
    app_label, codename = perm.split(".", 1)
    model = PERMISSION_MODELS.get(perm) or codename.split("_", 1)[-1]
    try:
        apps.get_model(app_label, model)
    except LookupError:
        return False
    return True
