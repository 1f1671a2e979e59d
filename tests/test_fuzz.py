"""Schemathesis against /openapi.json, signed in as an admin: no 5xx, and every
answer has a documented status and content type and matches the schema
documented for them.

Bounded: a few examples per operation (the examples, coverage and fuzzing
phases), so CI stays quick; the live feeds (a WebSocket, an endless SSE
stream) are left out. A failure prints schemathesis' report with a curl line
that reproduces it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from inventory.config import Settings
from inventory.models import Role
from tests.conftest import Account
from tests.processes import environment, server_environment, serving

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
EXAMPLES_PER_OPERATION = 15


def test_schemathesis_finds_no_server_errors_and_no_undocumented_answers(
    settings: Settings, accounts: dict[Role, Account]
):
    # Fuzzing writes a lot: the per-user write limit is not what this test is about.
    env = server_environment(settings, INVENTORY_WRITE_RATE_LIMIT="100000/minute")
    with serving("--no-migrate", **env) as server:
        result = subprocess.run(  # noqa: S603 - the fuzzer's own console script
            [
                SCHEMATHESIS,
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {accounts[Role.admin].token}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--phases",
                "examples,coverage,fuzzing",
                "--workers",
                "2",
                "--seed",
                "20261126",
                "--exclude-path-regex",
                "^/api/v1/(ws/stock|stock/events)$",
            ],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
