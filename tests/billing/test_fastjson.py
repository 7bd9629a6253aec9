"""JSON on the mirror's write path: the same JSON value the standard library gives."""

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder

from billing import fastjson
from billing.mirror import records

VALUE = {
    "id": "in_1",
    "amount": 1500,
    "ratio": 0.125,
    "name": "Zoë ✓",
    "nothing": None,
    "flags": [True, False],
    "lines": {"object": "list", "data": [{"id": "il_1", "period": {"start": 1}}]},
}


def test_plain_data_is_the_same_json_value():
    assert json.loads(fastjson.dumps(VALUE)) == json.loads(json.dumps(VALUE)) == VALUE


def test_django_encoder_values_are_written_as_django_writes_them():
    value = {
        "at": datetime(2026, 11, 28, 5, 35, 11, 850123, tzinfo=UTC),
        "day": date(2026, 11, 28),
        "price": Decimal("12.50"),
        "key": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        1: "keys that are not strings become strings",
    }

    assert json.loads(fastjson.dumps(value, DjangoJSONEncoder)) == json.loads(
        json.dumps(value, cls=DjangoJSONEncoder)
    )


def test_datetimes_without_an_encoder_are_refused_as_json_refuses_them():
    with pytest.raises(TypeError):
        json.dumps({"at": datetime(2026, 11, 28, tzinfo=UTC)})
    with pytest.raises(TypeError):
        fastjson.dumps({"at": datetime(2026, 11, 28, tzinfo=UTC)})


def test_a_default_is_used_for_what_json_cannot_hold():
    value = {"at": datetime(2026, 11, 28, 5, 35, 11, 850123, tzinfo=UTC)}

    assert json.loads(fastjson.dumps(value, default=datetime.isoformat)) == {
        "at": "2026-11-28T05:35:11.850123+00:00"
    }


def test_other_encoders_are_the_standard_librarys():
    class Upper(json.JSONEncoder):
        def default(self, o):
            return str(o).upper()

    assert fastjson.dumps({"x": Decimal("1e3")}, Upper) == json.dumps(
        {"x": Decimal("1e3")}, cls=Upper
    )


def test_the_copy_dj_stripe_gets_is_its_own_with_nested_lists_that_page():
    data = json.loads(json.dumps(VALUE))

    copy = records.sync_data(data)
    copy["lines"]["data"][0]["period"]["start"] = 2

    assert data == VALUE  # the caller's data is untouched
    assert [item["id"] for item in copy["lines"].auto_paging_iter()] == ["il_1"]
    assert [item["id"] for item in copy["lines"]] == ["il_1"]
    assert not hasattr(copy, "auto_paging_iter")  # only lists page
