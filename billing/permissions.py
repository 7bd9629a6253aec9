"""The console's permissions on the Stripe boundary, and what each action needs. The staff
groups that hold them, with the shop's own, are the shop's (``orders.staff``)."""

from __future__ import annotations

EDIT_METADATA = "billing.edit_stripe_metadata"
EDIT_LINK_METADATA = "billing.edit_stripe_link_metadata"
RESYNC = "billing.resync_stripe_object"
REPROCESS = "billing.reprocess_inboundevent"
MANAGE_WEBHOOK_ENDPOINTS = "billing.manage_webhook_endpoints"


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
