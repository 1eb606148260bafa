"""Settings: one pydantic-settings class, read from the environment and `.env`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"  # noqa: S105 - the placeholder production refuses
MIN_SECRET_LENGTH = 32


class InsecureSettingsError(ValueError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "production"] = "development"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    https_port: int = Field(8443, ge=1, le=65535)
    http_port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path(".data")
    database_url: str = ""
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    log_level: str = "INFO"
    log_json: bool = False

    access_token_minutes: int = Field(30, ge=1, le=24 * 60)
    refresh_token_days: int = Field(14, ge=1, le=365)
    login_failures_per_minute: int = Field(5, ge=1)

    llm_provider: Literal["offline", "openai"] = "offline"
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(60.0, gt=0)
    llm_max_rounds: int = Field(8, ge=1, le=32)
    llm_context_chars: int = Field(32_000, ge=1_000)
    llm_history_messages: int = Field(20, ge=0, le=200)
    offline_chunk_delay_ms: int = Field(15, ge=0, le=1000)

    session_idle_seconds: int = Field(3600, ge=1)
    ws_auth_timeout_seconds: float = Field(10.0, gt=0)
    ws_idle_timeout_seconds: float = Field(90.0, gt=0)
    ws_max_frame_bytes: int = Field(64 * 1024, ge=1024)
    ws_per_message_deflate: bool = False
    replay_buffer_frames: int = Field(1000, ge=0)
    rate_limit_frames_per_second: float = Field(20.0, gt=0)
    rate_limit_frame_burst: int = Field(40, ge=1)
    rate_limit_prompts_per_minute: int = Field(30, ge=1)
    rate_limit_strikes_before_close: int = Field(20, ge=1)

    tree_max_nodes: int = Field(100_000, ge=1)
    tree_max_depth: int = Field(64, ge=2, le=120)  # orjson nests at most 255 containers (2 per level)

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        secret = self.secret_key.get_secret_value()
        if secret == DEFAULT_SECRET or len(secret) < MIN_SECRET_LENGTH:
            raise InsecureSettingsError(
                f"SECRET_KEY must be set to a random value of at least {MIN_SECRET_LENGTH} characters "
                "when ENVIRONMENT=production"
            )
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        """`DATABASE_URL`, or a SQLite file in `DATA_DIR`; sync driver names get their async twin."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'canopy.db').resolve()}"
        url = self.database_url
        for sync, async_ in (("sqlite://", "sqlite+aiosqlite://"), ("postgresql://", "postgresql+asyncpg://"),
                             ("postgres://", "postgresql+asyncpg://")):
            if url.startswith(sync):
                return async_ + url[len(sync):]
        return url
