"""Settings: one pydantic-settings class, read from the environment and `.env`."""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET = "change-me"  # noqa: S105 - the .env.example placeholder, refused in every environment
MIN_SECRET_LENGTH = 32
# Production wants a key that looks random: its characters' empirical entropy times its length
# (32 x 'a' scores 0; `openssl rand -hex 32` about 250; `secrets.token_urlsafe(32)` about 230).
MIN_SECRET_BITS = 128


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
    # Empty: production refuses to start; development signs with a random key per process (tokens end at restart).
    secret_key: SecretStr = SecretStr("")
    log_level: str = "INFO"
    log_json: bool = False

    access_token_minutes: int = Field(30, ge=1, le=24 * 60)
    refresh_token_days: int = Field(14, ge=1, le=365)
    login_failures_per_minute: int = Field(5, ge=1)
    login_failures_per_account: int = Field(20, ge=1)  # per username, from any address, per 15 min
    login_failures_per_ip: int = Field(100, ge=1)  # per client address, any usernames, per 15 min
    login_throttle_max_keys: int = Field(10_000, ge=10)
    password_hash_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    password_hash_queue: int = Field(4, ge=0)
    # Browser origins allowed besides the app's own host (comma separated), for /api/auth/ POSTs and /ws/session.
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # None: the OpenAPI docs (/api/docs, /api/openapi.json) are served only when ENVIRONMENT=development.
    api_docs: bool | None = None

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
    # Budgets (docs/reliability.md, "Budgets"): bytes, counts and rates one user or socket may hold.
    ws_outbox_max_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024)
    replay_buffer_max_bytes: int = Field(4 * 1024 * 1024, ge=0)
    max_sessions_per_user: int = Field(200, ge=1)
    sessions_created_per_minute: int = Field(10, ge=1)
    ws_max_sockets_per_user: int = Field(20, ge=1)
    ws_max_unauthenticated_per_ip: int = Field(50, ge=1)
    user_storage_max_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024)
    rate_limit_frames_per_second: float = Field(20.0, gt=0)
    rate_limit_frame_burst: int = Field(40, ge=1)
    rate_limit_prompts_per_minute: int = Field(30, ge=1)
    rate_limit_strikes_before_close: int = Field(20, ge=1)

    # Replicas (docs/scaling.md): how many API processes share the database (more than one
    # needs PostgreSQL), and how long a replica's claim on a session lasts unrenewed.
    replicas: int = Field(1, ge=1, le=64)
    lease_seconds: float = Field(10.0, ge=0.5, le=300)
    # Where the other replicas reach this one's API (an MCP tool call for a session held here is
    # forwarded to it). Empty: http://API_HOST:API_PORT, with this machine's host name in place of
    # an API_HOST that listens on every address (0.0.0.0, ::), as in a container.
    replica_url: str = Field("", max_length=200)
    # Host names /mcp answers to (comma separated; any port): the MCP SDK's DNS-rebinding guard.
    mcp_allowed_hosts: str = "localhost,127.0.0.1,[::1]"

    tree_max_nodes: int = Field(100_000, ge=1)
    tree_max_depth: int = Field(64, ge=2, le=120)  # orjson nests at most 255 containers (2 per level)
    tree_max_bytes: int = Field(8 * 1024 * 1024, ge=1024)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("llm_base_url")
    @classmethod
    def _refuse_credentials_in_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.username or parts.password or "@" in parts.netloc:
            # httpx would log the whole URL; the key belongs in LLM_API_KEY, which is never logged.
            raise InsecureSettingsError("LLM_BASE_URL must not contain credentials (user:pass@); use LLM_API_KEY")
        return value

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if secret == DEFAULT_SECRET:
            raise InsecureSettingsError(
                "SECRET_KEY is the .env.example placeholder; set a random value (openssl rand -hex 32)"
            )
        if self.environment != "production":
            if not secret:
                self.secret_key = SecretStr(secrets.token_hex(32))
            return self
        if len(secret) < MIN_SECRET_LENGTH or secret_bits(secret) < MIN_SECRET_BITS:
            raise InsecureSettingsError(
                f"SECRET_KEY must be a random value of at least {MIN_SECRET_LENGTH} characters "
                f"(about {MIN_SECRET_BITS} bits) when ENVIRONMENT=production; openssl rand -hex 32 makes one"
            )
        return self

    @property
    def docs_enabled(self) -> bool:
        return self.environment == "development" if self.api_docs is None else self.api_docs

    @model_validator(mode="after")
    def _replicas_need_postgres(self) -> Settings:
        if self.replicas > 1 and not self.sqlalchemy_url.startswith("postgresql"):
            raise ValueError(
                f"REPLICAS={self.replicas} needs PostgreSQL (DATABASE_URL=postgresql+asyncpg://..., or "
                "POSTGRES=local with make run): SQLite is one process's file, replicas would fork sessions"
            )
        return self

    @property
    def clustered(self) -> bool:
        """Leases and cross-replica events: on PostgreSQL, whatever the replica count (a lone
        replica pays one renewal per TTL/3 and may be joined by others at any time)."""
        return self.sqlalchemy_url.startswith("postgresql")

    @property
    def internal_url(self) -> str:
        """This replica's address for the others (`REPLICA_URL`, or derived from API_HOST:API_PORT)."""
        if self.replica_url:
            return self.replica_url.rstrip("/")
        host = self.api_host
        if host in ("0.0.0.0", "::", "[::]", ""):  # every address: the others use our host name
            host = socket.gethostname()
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.api_port}"

    @cached_property
    def sqlalchemy_url(self) -> str:
        """`DATABASE_URL`, or a SQLite file in `DATA_DIR`; sync driver names get their async twin."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'canopy.db').resolve()}"
        url = self.database_url
        for sync, async_ in (
            ("sqlite://", "sqlite+aiosqlite://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
        ):
            if url.startswith(sync):
                return async_ + url[len(sync) :]
        return url


def secret_bits(secret: str) -> float:
    """Length times the empirical Shannon entropy of the characters: a floor check, not a proof of randomness."""
    counts = Counter(secret)
    n = len(secret)
    per_char = -sum(c / n * math.log2(c / n) for c in counts.values())
    return per_char * n
