"""The Celery application: beat runs the timer sweep; tasks carry work that should run now.

Nothing here holds an SLA: timers are rows that stay due until a sweep fires them, so a lost
or repeated message loses nothing and fires nothing twice.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from engine.settings import Settings, get_settings
from worker import broker


def broker_options(settings: Settings) -> dict[str, Any]:
    """Celery settings for the configured broker, or for the embedded one."""
    if settings.broker_url:
        return {"broker_url": settings.broker_url}
    folder = settings.broker_folder()
    for sub in ("in", "processed"):
        settings.private_folder(folder.relative_to(settings.data_dir).as_posix(), sub)
    return {
        "broker_url": f"{broker.ALIAS}://",
        "broker_transport_options": {
            "data_folder_in": str(folder / "in"),
            "data_folder_out": str(folder / "in"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            # the transport polls its folder; a second would add a second to every timer
            "polling_interval": 0.1,
        },
    }


def make_celery(settings: Settings | None = None) -> Celery:
    """The Celery app for these settings."""
    settings = settings or get_settings()
    settings.private_folder()
    interval = settings.timer_interval
    app = Celery("sopflow", include=["worker.tasks"])
    app.conf.update(
        broker_options(settings),
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a broker that comes back is used again
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        beat_schedule={
            "sweep-timers": {
                "task": "sopflow.sweep",
                "schedule": interval,
                # a sweep that waited longer than two intervals is stale: a newer one comes
                "options": {"expires": max(2 * interval, 1.0)},
            },
            # the trail's tree is extended and a checkpoint signed outside any request
            "checkpoint-trail": {
                "task": "sopflow.checkpoint",
                "schedule": settings.checkpoint_interval,
                "options": {"expires": max(2 * settings.checkpoint_interval, 1.0)},
            },
            "deliver-webhooks": {
                "task": "sopflow.deliver_webhooks",
                "schedule": 10.0,
                "options": {"expires": 20.0},
            },
            # personal data of closed cases past their SOP's retention (UU 27/2022)
            "erase-expired-personal-data": {
                "task": "sopflow.erase_expired",
                "schedule": 86400.0,
                "options": {"expires": 3600.0},
            },
        },
    )
    return app


celery_app = make_celery()
