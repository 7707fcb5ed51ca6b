"""Settings from the environment (`SOPFLOW_*`, also read from a `.env` file): the one place."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting sopflow reads, with its embedded default."""

    model_config = SettingsConfigDict(env_prefix="SOPFLOW_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///sopflow.db",
        description="SQLAlchemy URL; a SQLite file in the working folder by default",
    )
    broker_url: str | None = Field(
        None, description="Celery broker, e.g. redis://127.0.0.1:6379/0; none = embedded"
    )
    timer_interval: float = Field(1.0, gt=0, description="seconds between SLA timer sweeps")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
