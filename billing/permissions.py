"""Who may do what in the support console: the two staff groups and the console's permissions.

The groups are created by a data migration (``billing/migrations/0004_support_groups.py``)
calling ``groups_sync``; tests run without migrations and call it themselves. Re-running it
brings a group back to exactly this definition.
"""

from __future__ import annotations

from django.apps import apps as global_apps

SUPPORT = "Support"
BILLING_ADMIN = "Billing admin"

EDIT_METADATA = "billing.edit_stripe_metadata"
EDIT_LINK_METADATA = "billing.edit_stripe_link_metadata"
RESYNC = "billing.resync_stripe_object"
REPROCESS = "billing.reprocess_inboundevent"
MANAGE_WEBHOOK_ENDPOINTS = "billing.manage_webhook_endpoints"
RESOLVE_PAYMENT = "orders.resolve_orderpayment"
# Custom permissions by the model declaring them (a default permission names it itself).
PERMISSION_MODELS = {RESOLVE_PAYMENT: "orderpayment"}

# The mirrored Stripe objects support reads (dj-stripe model names).
STRIPE_OBJECT_MODELS = (
    "customer",
    "product",
    "price",
    "session",
    "paymentintent",
    "charge",
    "refund",
    "subscription",
    "invoice",
)

SUPPORT_PERMISSIONS = (
    "orders.view_order",
    "orders.view_orderitem",
    "orders.view_orderhistory",
    "orders.view_orderpayment",
    *(f"djstripe.view_{model}" for model in STRIPE_OBJECT_MODELS),
    "billing.view_inboundevent",
    "billing.view_webhookdelivery",
    "billing.view_objectsync",
    "billing.view_auditentry",
    "billing.view_resyncjob",
    EDIT_METADATA,
    RESYNC,
)

BILLING_ADMIN_PERMISSIONS = (
    *SUPPORT_PERMISSIONS,
    EDIT_LINK_METADATA,
    REPROCESS,
    MANAGE_WEBHOOK_ENDPOINTS,
    RESOLVE_PAYMENT,
    "djstripe.view_webhookendpoint",
)

GROUPS: dict[str, tuple[str, ...]] = {
    SUPPORT: SUPPORT_PERMISSIONS,
    BILLING_ADMIN: BILLING_ADMIN_PERMISSIONS,
}


def groups_sync(*, apps=global_apps) -> dict[str, object]:
    """Create or update the console's groups to hold exactly their permissions.

    ``apps`` is the migration's historical registry when called from a migration. There, a
    permission of a model that does not exist yet is left out: the migration that creates the
    model syncs the groups again (e.g. ``orders/migrations/0005_order_payments.py``).
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
            perm for perm, obj in found.items() if obj is None and _model_exists(apps, perm)
        )
        if missing:
            raise LookupError(f"permissions missing for group {name!r}: {', '.join(missing)}")
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.set(obj for obj in found.values() if obj is not None)
        groups[name] = group
    return groups


def _model_exists(apps, perm: str) -> bool:
    app_label, codename = perm.split(".", 1)
    model = PERMISSION_MODELS.get(perm) or codename.split("_", 1)[-1]
    try:
        apps.get_model(app_label, model)
    except LookupError:
        return app_label != "orders"  # only orders' models arrive after billing's groups
    return True


def metadata_permissions(*, object_type: str, keys: list[str] | tuple[str, ...] = ()) -> list[str]:
    """What editing these metadata keys of this type of object needs."""
    from billing.metadata import link_keys_in

    needed = [EDIT_METADATA]
    if link_keys_in(keys):
        needed.append(EDIT_LINK_METADATA)
    if object_type == "webhook_endpoint":
        needed.append(MANAGE_WEBHOOK_ENDPOINTS)
    return needed


def resync_permissions(*, object_type: str) -> list[str]:
    needed = [RESYNC]
    if object_type == "webhook_endpoint":
        needed.append(MANAGE_WEBHOOK_ENDPOINTS)
    return needed
