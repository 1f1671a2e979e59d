"""The browser assets shipped for the docs pages: their manifest, local URLs and checksums.

``inventory/static/manifest.json`` lists each npm package copied into
``inventory/static/vendor/<package>-<version>/`` and the sha256 of every file
taken from it. The files are the released bytes, unchanged, so the pages work
with no internet access and GraphiQL's integrity attributes still match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
VENDOR_DIR = STATIC_DIR / "vendor"
MANIFEST = STATIC_DIR / "manifest.json"
VENDOR_URL = "/static/vendor"


@dataclass(frozen=True)
class VendorPackage:
    """One npm release and the files we ship from it (path in the package: sha256)."""

    name: str
    version: str
    license: str
    integrity: str
    """npm's integrity of the release tarball, as ``npm pack`` reports it."""
    files: dict[str, str]
    borrowed: dict[str, str] = field(default_factory=dict)
    """Files its tarball lacks, taken from another release (path: ``name@version``)."""

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def directory(self) -> str:
        """Named like ``npm pack``'s tarball: ``@graphiql/plugin-explorer`` 1.0.2 is
        ``graphiql-plugin-explorer-1.0.2``."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}"


def read_manifest(path: Path = MANIFEST) -> list[VendorPackage]:
    entries = json.loads(path.read_text(encoding="utf-8"))["packages"]
    return [VendorPackage(**entry) for entry in entries]


@cache
def packages() -> dict[str, VendorPackage]:
    return {package.name: package for package in read_manifest()}


def asset_url(package: str, file: str, root_path: str = "") -> str:
    """The URL the app serves one shipped file at; a file not in the manifest is an error."""
    shipped = packages()[package]
    if file not in shipped.files:
        raise LookupError(f"{file} of {shipped.spec} is not in {MANIFEST.name}")
    return f"{root_path}{VENDOR_URL}/{shipped.directory}/{file}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mismatches() -> list[str]:
    """Every shipped file that is missing or differs from the manifest (empty when all match)."""
    problems = []
    for package in packages().values():
        for file, expected in package.files.items():
            path = VENDOR_DIR / package.directory / file
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif (actual := sha256(path)) != expected:
                problems.append(f"{path}: sha256 {actual}, manifest says {expected}")
    return problems
