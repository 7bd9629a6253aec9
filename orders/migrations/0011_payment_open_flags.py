"""The open flagged payments, indexed by themselves (a partial index): the front page counts them
and the payments list filters them without reading the whole table. Built CONCURRENTLY on
PostgreSQL (outside a transaction), as a table of payments at scale needs."""

from django.db import migrations, models

from config.schema import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0010_item_downloads"),
    ]

    operations = [
        AddIndexOnline(
            model_name="orderpayment",
            index=models.Index(
                condition=models.Q(models.Q(("flag", ""), _negated=True), ("resolved_at", None)),
                fields=["created_at", "id"],
                name="orderpayment_open_flags",
            ),
        ),
    ]
