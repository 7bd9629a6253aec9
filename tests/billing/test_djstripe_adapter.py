"""The one place that bends dj-stripe (``billing.mirror.djstripe``) relies on dj-stripe's
internals staying as they are. These fail when an upgrade changes what it replaces or calls,
before a batch of writes goes wrong in production."""

from __future__ import annotations

import inspect
from importlib.metadata import version

from djstripe import models as djstripe_models

from billing.mirror import djstripe as adapter


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_version_the_adapter_was_written_for():
    assert version("dj-stripe").startswith("2.11."), version("dj-stripe")


def test_the_replaced_classmethods_are_ours_and_keep_the_originals_signatures():
    stripe_model = djstripe_models.StripeModel
    assert stripe_model._get_or_create_from_stripe_object.__func__ is adapter._row_for_field
    assert djstripe_models.Account.get_or_retrieve_for_api_key.__func__ is adapter._account_for_key
    # the originals, still called outside a batch, take what the replacements pass on
    assert _parameters(adapter._row_lookup)[:3] == ["cls", "data", "field_name"]
    assert _parameters(adapter._account_lookup) == ["cls", "api_key"]
    assert adapter._row_create is djstripe_models.StripeModel._create_from_stripe_object.__func__


def test_the_private_helpers_the_batch_calls_still_exist():
    model = djstripe_models.StripeModel
    for name in ("_stripe_object_to_record", "_attach_objects_hook",
                 "_attach_objects_post_save_hook", "sync_from_stripe_data"):  # fmt: skip
        assert callable(getattr(model, name, None)), name
    create = _parameters(adapter._row_create)
    for name in ("data", "current_ids", "pending_relations", "save", "stripe_account", "api_key"):
        assert name in create, (name, create)
    record = _parameters(model._stripe_object_to_record.__func__)
    assert "pending_relations" in record, record
