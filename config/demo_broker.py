"""The embedded broker of ``make demo``: ``CELERY_BROKER_URL=filesystem://`` keeps the queue as
files in ``CELERY_BROKER_FOLDER`` (kombu's filesystem transport), so the demo runs the same
worker, retries and beat schedule as production with no server to install. One machine only;
production uses Redis."""

from __future__ import annotations

from pathlib import Path


def filesystem_options(folder: Path) -> dict[str, object]:
    """kombu's transport options for a queue kept in ``folder``."""
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.5,
    }
