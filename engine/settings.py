"""Settings from the environment (`SOPFLOW_*`, also read from a `.env` file): the one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    worker_timeout: int = Field(
        30,
        ge=1,
        description="seconds a server worker process may go silent before it is replaced",
    )
    allow_private_webhooks: bool = Field(
        False,
        description="let webhooks post to loopback, private and link-local addresses "
        "(a receiver on the same machine or network; never on a shared host)",
    )
    auth_failure_limit: int = Field(
        20,
        ge=1,
        description="failed authentications one client address may make per window before "
        "every request from it gets 429",
    )
    auth_failure_window: int = Field(
        60, ge=1, description="seconds over which failed authentications are counted"
    )
    service_role_password: str | None = Field(
        None,
        description="password `sopflow db upgrade --service-role` gives the service's role",
    )
    data_dir: Path = Field(
        Path(".sopflow"),
        description="where the embedded broker and the scheduler keep their files",
    )
    log_origin: str = Field(
        "sopflow.local/trail",
        pattern=r"^[^\s+]+$",
        description="the origin line of the trail's signed checkpoints: a schema-less URL "
        "naming this deployment's trail, e.g. `layanan.example.go.id/trail`",
    )
    checkpoint_key_file: Path | None = Field(
        None,
        description="the Ed25519 key that signs the trail's checkpoints (`sopflow audit "
        "keygen` makes one); none = `keys/checkpoint.key` in the data folder, made on first "
        "use",
    )
    checkpoint_interval: float = Field(
        5.0, gt=0, description="seconds between checkpoints of the trail while events arrive"
    )
    witness_keys: list[str] = Field(
        default_factory=list,
        description="verifier keys of the witnesses whose cosignatures are accepted (a JSON "
        "list); empty = any cosignature that verifies by the key sent with it",
    )

    @property
    def embedded_broker(self) -> bool:
        """True when no broker is configured and sopflow runs its own."""
        return not self.broker_url

    def private_folder(self, *parts: str) -> Path:
        """A folder under `data_dir` (made if missing) that only its owner may enter."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        folder = self.data_dir
        for part in ("", *parts):
            folder = folder / part if part else folder
            folder.mkdir(exist_ok=True)
            folder.chmod(0o700)  # mkdir's mode is narrowed by the umask, never widened
        return folder

    def broker_folder(self) -> Path:
        """The embedded broker's message folder (kombu's filesystem transport)."""
        return self.data_dir / "broker"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
