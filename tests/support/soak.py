"""The soak's size, read from the environment: shared by its load engine (bench/loadclient.py) and its test."""

from __future__ import annotations

import os
from pathlib import Path

LONG = os.environ.get("CANOPY_FUZZ") == "long"
USERS = int(os.environ.get("CANOPY_SOAK_USERS") or (200 if LONG else 20))
SECONDS = float(os.environ.get("CANOPY_SOAK_SECONDS") or (300 if LONG else 20))
REPORT = Path(os.environ.get("CANOPY_SOAK_REPORT") or "/tmp/canopy-soak.md")
# Registration (argon2) and connecting take ~0.5 s per user on a busy 2-core box; the final checks a few seconds.
HARD_TIMEOUT = SECONDS + 120 + USERS * 1.0
