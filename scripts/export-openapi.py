#!/usr/bin/env python3
"""Prints the REST API's OpenAPI document, built by importing the app (`canopy.main.create_app`).

The web app's REST types (services/web/src/lib/generated/api.ts) are generated from it by
services/web/scripts/gen-types.mjs; `make types` runs both, `make lint` checks the result is fresh.
Nothing is started: `FastAPI.openapi()` only reads the routes and their pydantic models.

Usage, from the repository root:

    .venv/bin/python scripts/export-openapi.py              # to stdout
    .venv/bin/python scripts/export-openapi.py -o FILE      # to FILE
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    from canopy.config import Settings
    from canopy.main import create_app
except ImportError:  # not installed in this interpreter: use the source tree
    sys.path.insert(0, str(ROOT / "services" / "api"))
    from canopy.config import Settings
    from canopy.main import create_app


def openapi_text() -> str:
    # No .env: the document must not depend on the machine it was exported on.
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = openapi_text()
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
