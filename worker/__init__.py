"""The Celery worker: timer sweeps and notifications, calling the service layer."""
