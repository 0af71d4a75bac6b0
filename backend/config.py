"""Settings from the environment (PIESTUDY_*) or a .env file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Shipped so that a development checkout runs without set-up; refused in production.
DEFAULT_SECRET_KEY = "piestudy-development-secret-change-me"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PIESTUDY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means a SQLite file under var_dir",
    )
    media_dir: Path | None = Field(
        default=None, description="where uploaded and derived images live; var_dir/media if unset"
    )
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = Field(
        default="",
        description="base URL used in reader invitation links; http://host:port if unset",
    )
    import_roots: list[Path] = Field(
        default_factory=list,
        description="folders the JSON API may read label files and images from",
    )
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["*"],
        description='Host headers answered (e.g. ["piestudy.example.org"]); others get 400',
    )
    max_request_mb: int = Field(
        default=100, ge=1, le=10_000, description="larger request bodies are refused with 413"
    )
    prerender: bool = Field(
        default=True,
        description="make every image's reader renderings when its study opens or gains readers"
        " (in the background), so that no reader waits for one",
    )
    db_slots: int | None = Field(
        default=None, ge=1, le=10,
        description="requests that may hold a database session at once (the rest queue); "
        "unset: 1 on SQLite; on PostgreSQL 4 shared out among the server processes, 2 each at least",
    )  # fmt: skip
    workers: int | None = Field(
        default=None, ge=1, le=32,
        description="server processes (`piestudy serve`); unset: 1 on SQLite (one writer at a "
        "time in any case), one per CPU core (at most 8) on PostgreSQL",
    )  # fmt: skip
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="proxies whose X-Forwarded-For/-Proto are trusted (HTTPS behind a proxy)",
    )

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.env == "production":
            secret = self.secret_key.get_secret_value()
            if secret == DEFAULT_SECRET_KEY:
                raise ValueError(
                    "PIESTUDY_SECRET_KEY is the development default; set a random secret "
                    "(for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`) "
                    "before running with PIESTUDY_ENV=production"
                )
            if len(secret) < 32:
                raise ValueError("PIESTUDY_SECRET_KEY must be at least 32 characters in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'piestudy.db').resolve()}"

    def may_read(self, path: Path) -> bool:
        """Whether a server path lies inside one of PIESTUDY_IMPORT_ROOTS (the API and runs
        read only there)."""
        resolved = path.resolve()
        return any(resolved.is_relative_to(root.resolve()) for root in self.import_roots)

    @property
    def resolved_media_dir(self) -> Path:
        return (self.media_dir or self.var_dir / "media").resolve()

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def server_workers(self) -> int:
        """Processes `piestudy serve` starts: one per core (at most 8), on PostgreSQL and SQLite
        alike. A process runs Python on one core at a time; at 200 readers one process alone
        queues their requests behind each other (measured on SQLite, 2 cores: answer save p99
        0.1-2.6 s with one process, 23-29 ms with two). SQLite's writers of all processes take
        turns through backend.db.writer_turn."""
        if self.workers is not None:
            return self.workers
        return max(1, min(os.cpu_count() or 1, 8))


@lru_cache
def get_settings() -> Settings:
    return Settings()
