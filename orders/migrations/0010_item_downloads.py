# Digital goods delivered: one download counter per order item (orders.delivery.ItemDownload).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0009_refunds_disputes"),
    ]

    operations = [
        migrations.CreateModel(
            name="ItemDownload",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("count", models.PositiveIntegerField(default=0)),
                ("first_at", models.DateTimeField(blank=True, null=True)),
                ("last_at", models.DateTimeField(blank=True, null=True)),
                (
                    "item",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="download",
                        to="orders.orderitem",
                    ),
                ),
            ],
            options={"verbose_name": "download"},
        ),
    ]
