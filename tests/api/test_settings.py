from __future__ import annotations

import secrets
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from canopy.config import DEFAULT_SECRET, MIN_SECRET_BITS, Settings, secret_bits
from tests.conftest import make_settings
from tests.helpers import ApiProcess


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_HOST", "API_PORT", "HTTPS_PORT", "HTTP_PORT", "DATA_DIR", "LLM_PROVIDER", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    s = Settings(_env_file=None)
    assert (s.api_host, s.api_port, s.https_port, s.http_port) == ("127.0.0.1", 8000, 8443, 8080)
    assert s.data_dir == Path(".data") and s.environment == "development" and s.llm_provider == "offline"
    assert (s.access_token_minutes, s.session_idle_seconds) == (30, 3600)
    assert (s.rate_limit_frames_per_second, s.rate_limit_frame_burst, s.rate_limit_prompts_per_minute) == (20, 40, 30)
    assert s.ws_per_message_deflate is False


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("API_PORT", "9001")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WS_PER_MESSAGE_DEFLATE", "true")
    s = Settings(_env_file=None)
    assert s.api_port == 9001 and s.ws_per_message_deflate is True
    assert s.sqlalchemy_url == f"sqlite+aiosqlite:///{tmp_path / 'canopy.db'}"


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_MODEL", raising=False)
    env = tmp_path / ".env"
    env.write_text("LLM_MODEL=llama3.1\n")
    assert Settings(_env_file=env).llm_model == "llama3.1"


@pytest.mark.parametrize("secret", [None, DEFAULT_SECRET, "short-secret"])
def test_production_refuses_weak_secrets(secret: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    kwargs = {} if secret is None else {"secret_key": secret}
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="production", **kwargs)  # type: ignore[arg-type]


def test_production_accepts_a_strong_secret() -> None:
    s = Settings(_env_file=None, environment="production", secret_key=secrets.token_hex(32))
    assert s.environment == "production"


@pytest.mark.parametrize("environment", ["development", "production"])
def test_the_env_example_placeholder_is_refused_everywhere(environment: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(_env_file=None, environment=environment, secret_key=DEFAULT_SECRET)


@pytest.mark.parametrize("secret", ["a" * 32, "a" * 64, "ab" * 32, "abcd" * 8])
def test_production_refuses_low_entropy_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="production", secret_key=secret)


def test_development_without_a_secret_gets_a_random_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    one, two = (Settings(_env_file=None).secret_key.get_secret_value() for _ in range(2))
    assert len(one) == 64 and one != two and secret_bits(one) >= MIN_SECRET_BITS


@pytest.mark.parametrize(
    "url",
    ["http://user:pass@127.0.0.1:11434/v1", "https://sk-abc@api.example.com/v1", "https://:key@api.example.com/v1"],
)
def test_a_credentialed_llm_base_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="LLM_BASE_URL"):
        Settings(_env_file=None, llm_base_url=url)


def test_the_api_process_refuses_a_credentialed_llm_base_url(tmp_path: Path) -> None:
    """The real `make api` start: gunicorn's worker fails to boot, the error names the setting, not the secret."""
    api = ApiProcess(tmp_path, {"LLM_PROVIDER": "openai", "LLM_BASE_URL": "http://user:hunter2pass@127.0.0.1:9/v1"})
    with pytest.raises(RuntimeError, match="exited") as info:
        api.start()
    assert "LLM_BASE_URL must not contain credentials" in str(info.value) + api.logs()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql+asyncpg://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
    ],
)
def test_database_url_gets_an_async_driver(url: str, expected: str) -> None:
    assert Settings(_env_file=None, database_url=url).sqlalchemy_url == expected


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, api_port=70000)
    with pytest.raises(ValidationError):
        Settings(_env_file=None, llm_provider="bogus")


def test_env_example_lists_every_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    names = {line.split("=", 1)[0].lstrip("# ").strip() for line in example.splitlines() if "=" in line}
    for field in Settings.model_fields:
        assert field.upper() in names, f"{field.upper()} missing from .env.example"


def test_the_replica_address_the_others_use(tmp_path: Path) -> None:
    assert make_settings(tmp_path, api_host="127.0.0.1", api_port=8001).internal_url == "http://127.0.0.1:8001"
    everywhere = make_settings(tmp_path, api_host="0.0.0.0", api_port=8000).internal_url
    assert everywhere == f"http://{socket.gethostname()}:8000"  # as in a container: its host name
    assert make_settings(tmp_path, api_host="::1").internal_url == "http://[::1]:8000"
    given = make_settings(tmp_path, replica_url="http://api-2.internal:9000/")
    assert given.internal_url == "http://api-2.internal:9000"
