import pytest
from django.template import Context, Template

from billing.money import format_amount


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1999, "usd", "$19.99"),
        (100000, "usd", "$1,000.00"),
        (5, "eur", "€0.05"),
        (1500, "jpy", "¥1,500"),
        (1500, "JPY", "¥1,500"),
        (2500, "krw", "₩2,500"),
        (1000, "clp", "1,000 CLP"),
        (1999, "chf", "19.99 CHF"),
        (0, "usd", "$0.00"),
        (None, "usd", ""),
    ],
)
def test_format_amount(amount, currency, expected):
    assert format_amount(amount, currency) == expected


def test_template_filter():
    rendered = Template("{% load shop %}{{ a|money:c }}").render(Context({"a": 350, "c": "eur"}))
    assert rendered == "€3.50"
