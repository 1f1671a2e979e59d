"""The cache's dependencies are the ones its workarounds were written for.

fastapi-cache2's ``[redis]`` extra pins ``redis<5``, and pip then quietly
falls back to fastapi-cache2 0.1.8; and it imports ``starlette.templating``,
which needs jinja2. Installed and declared versions are both checked, so a
re-lock that slips either way fails here rather than in production.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def declared() -> dict[str, Requirement]:
    """The project's runtime dependencies from pyproject.toml, by canonical name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in requirements}


def locked() -> dict[str, str]:
    """requirements.lock's pins, by canonical name."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = str(requirement.specifier)
    return pins


def test_installed_versions_are_fastapi_cache2_0_2_2_beside_redis_5_or_later():
    assert version("fastapi-cache2") == "0.2.2"
    assert Version(version("redis")) >= Version("5")


def test_fastapi_cache2_is_declared_without_its_redis_extra():
    requirement = declared()["fastapi-cache2"]
    assert requirement.extras == set()
    assert "0.2.2" in requirement.specifier
    assert not requirement.specifier.contains("0.1.8")


def test_redis_5_and_jinja2_are_declared_and_locked():
    dependencies = declared()
    assert "jinja2" in dependencies
    assert not dependencies["redis"].specifier.contains("4.6.0")
    pins = locked()
    assert pins["fastapi-cache2"] == "==0.2.2"
    assert "jinja2" in pins
    assert Version(pins["redis"].removeprefix("==")) >= Version("5")


def test_fastapi_cache_coder_imports_in_a_fresh_interpreter():
    # In a new process: this one has imported everything already.
    result = subprocess.run(
        [sys.executable, "-c", "import fastapi_cache.coder, fastapi_cache.decorator"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
