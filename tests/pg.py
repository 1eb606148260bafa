"""A real PostgreSQL cluster for the tests: Debian's postgresql 15 through scripts/postgres.sh
(the same script `POSTGRES=local` uses), one throwaway database per test."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import ROOT

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCRIPT = ROOT / "scripts" / "postgres.sh"


def available() -> bool:
    return (PG_BIN / "initdb").exists()


@dataclass
class LocalPostgres:
    """A cluster in a fresh directory under /tmp (its parents must be passable by the
    `postgres` user when the tests run as root, which pytest's 0700 basetemp is not)."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="canopy-pg-")))
    url: str = ""

    @property
    def dir(self) -> Path:
        return self.base / "pg"

    def start(self) -> str:
        self.base.chmod(0o755)
        out = subprocess.run([str(SCRIPT), "start", str(self.dir)], check=True, capture_output=True, text=True)
        self.url = out.stdout.strip()
        return self.url

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", str(self.dir)], check=False, capture_output=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def sql(self, statement: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-h",
                str(self.dir),
                "-U",
                "canopy",
                "-d",
                database,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                statement,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://canopy@/{database}?host={self.dir}"

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:16]
        self.sql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        # A test's app may still hold pooled connections for a moment: FORCE ends them.
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
