"""Check the docs pages' shipped browser assets, or fetch them again from npm.

    python -m scripts.vendor_assets                      # check the files against the manifest
    python -m scripts.vendor_assets --download           # npm pack each release, verify, rewrite
    python -m scripts.vendor_assets --download --record  # after changing a version in the
                                                         # manifest: write the new checksums

Without ``--record`` a download whose tarball integrity or file checksum differs
from ``inventory/static/manifest.json`` changes nothing and exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from inventory.vendor import MANIFEST, VENDOR_DIR, VendorPackage, mismatches, read_manifest


def npm_pack(spec: str, into: Path) -> tuple[Path, str]:
    """Download one release tarball with npm; returns its path and npm's integrity."""
    packed = subprocess.run(  # noqa: S603 - fixed arguments, a spec from our manifest
        ["npm", "pack", spec, "--json", "--pack-destination", str(into)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(packed.stdout)[0]
    return into / info["filename"], str(info["integrity"])


def read_member(tarball: Path, file: str) -> bytes:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"package/{file}")
        if member is None:
            raise FileNotFoundError(f"{file} is not a file in {tarball.name}")
        return member.read()


def download(record: bool) -> int:
    manifest = read_manifest()
    problems: list[str] = []
    contents: dict[Path, bytes] = {}
    recorded: list[VendorPackage] = []
    with tempfile.TemporaryDirectory() as work:
        tarballs: dict[str, tuple[Path, str]] = {}

        def tarball(spec: str) -> tuple[Path, str]:
            if spec not in tarballs:
                tarballs[spec] = npm_pack(spec, Path(work))
            return tarballs[spec]

        for package in manifest:
            integrity = tarball(package.spec)[1]
            if integrity != package.integrity and not record:
                problems.append(
                    f"{package.spec}: integrity {integrity}, manifest says {package.integrity}"
                )
            files = {}
            for file, expected in package.files.items():
                source = package.borrowed.get(file, package.spec)
                data = read_member(tarball(source)[0], file)
                files[file] = digest = hashlib.sha256(data).hexdigest()
                if digest != expected and not record:
                    problems.append(
                        f"{package.spec} {file}: sha256 {digest}, manifest says {expected}"
                    )
                contents[VENDOR_DIR / package.directory / file] = data
            recorded.append(dataclasses.replace(package, integrity=integrity, files=files))
    if problems:
        print("\n".join(problems), "\nnothing changed; --record accepts them", file=sys.stderr)
        return 1
    keep = {package.directory for package in manifest}
    for stale in VENDOR_DIR.iterdir() if VENDOR_DIR.is_dir() else []:
        if stale.is_dir() and stale.name not in keep:
            shutil.rmtree(stale)
            print(f"removed {stale}")
    for target, data in contents.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if record:
        write_manifest(recorded)
    print(f"wrote {len(contents)} files from {len(manifest)} releases into {VENDOR_DIR}")
    return 0


def write_manifest(packages: list[VendorPackage]) -> None:
    document = json.loads(MANIFEST.read_text(encoding="utf-8"))
    document["packages"] = [
        {key: value for key, value in dataclasses.asdict(package).items() if value != {}}
        for package in packages
    ]
    MANIFEST.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--download", action="store_true", help="fetch every release with npm")
    parser.add_argument("--record", action="store_true", help="accept and record new checksums")
    arguments = parser.parse_args()
    if arguments.download:
        return download(record=arguments.record)
    if problems := mismatches():
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"all files match {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
