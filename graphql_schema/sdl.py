"""The schema as SDL, for client code generators: ``python -m graphql_schema.sdl`` (``make schema``)
rewrites ``graphql_schema/schema.graphql`` from the code."""

from __future__ import annotations

import sys
from pathlib import Path

from strawberry.printer import print_schema

from graphql_schema.schema import build_schema
from inventory.config import Environment, Settings

SDL_FILE = Path(__file__).with_name("schema.graphql")


def sdl() -> str:
    """The SDL of the schema the API serves (settings change its extensions, not its types)."""
    return print_schema(build_schema(Settings(env=Environment.development))) + "\n"


def main() -> None:
    SDL_FILE.write_text(sdl(), encoding="utf-8")
    sys.stdout.write(f"wrote {SDL_FILE}\n")


if __name__ == "__main__":
    main()
