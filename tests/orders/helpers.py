from __future__ import annotations

import secrets

from billing import stripe_api
from orders.models import Order


def buy(client, price_id: str, *, quantity: int = 1, token: str | None = None):
    """POST the buy form as the catalog renders it; return the response."""
    return client.post(
        "/buy/",
        {
            "price_id": price_id,
            "quantity": quantity,
            "request_token": token or secrets.token_urlsafe(24),
        },
    )


def bought(client, price_id: str, **kwargs) -> Order:
    response = buy(client, price_id, **kwargs)
    assert response.status_code == 303, response.content
    return Order.objects.order_by("-pk").first()


def stripe_obj(object_type: str, stripe_id: str, expand=()) -> dict:
    return stripe_api.as_dict(
        stripe_api.retrieve(object_type=object_type, stripe_id=stripe_id, expand=expand)
    )


def stripe_list(object_type: str, **params) -> list[dict]:
    return [
        stripe_api.as_dict(o) for o in stripe_api.list_all(object_type=object_type, params=params)
    ]
