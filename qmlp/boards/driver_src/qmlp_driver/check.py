"""Verify a deployment: ``python3 -m qmlp_driver.check [--root DIR] [--selftest N]``.

Checks the sha256 of every file listed in ``manifest.json``, that the bitstream slots are filled
(and match ``bitstream/SHA256SUMS`` when the Vivado build wrote one) and, with ``--selftest``, loads
the overlay and compares N random vectors against the bundled bit-accurate model. Exit status 0
when everything holds, 1 otherwise; one line per finding."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

__all__ = ["sha256", "check_manifest", "main"]

MANIFEST = "manifest.json"
SUMS = "bitstream/SHA256SUMS"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_manifest(root: Path) -> list[str]:
    """Problems found under ``root`` (empty when the deployment is intact)."""
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path}: missing (not a qmlp deploy directory?)"]
    manifest = json.loads(manifest_path.read_text())
    problems = []
    for rel, digest in sorted(manifest["files"].items()):
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif sha256(path) != digest:
            problems.append(f"{rel}: modified (sha256 differs from the manifest)")
    for rel, how in sorted(manifest.get("slots", {}).items()):
        if not (root / rel).is_file():
            problems.append(f"{rel}: empty slot ({how})")
    sums = root / SUMS
    if sums.is_file():
        for line in sums.read_text().splitlines():
            digest, _, name = line.partition("  ")
            path = root / "bitstream" / name.strip()
            if not path.is_file() or sha256(path) != digest.strip():
                problems.append(f"bitstream/{name.strip()}: does not match {SUMS}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m qmlp_driver.check", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="deploy directory (default: the one holding this driver)")
    parser.add_argument("--selftest", type=int, metavar="N", default=0,
                        help="also run N random vectors on the hardware (needs pynq and the board)")
    args = parser.parse_args(argv)
    problems = check_manifest(args.root)
    for problem in problems:
        print(f"qmlp check: {problem}")
    if not problems:
        print(f"qmlp check: {args.root}: every file matches {MANIFEST}")
    if args.selftest and not problems:
        from .accelerator import Accelerator

        acc = Accelerator(root=args.root)
        acc.identify()
        bad = acc.selftest(args.selftest)
        print(f"qmlp check: selftest {args.selftest - bad}/{args.selftest} vectors bit-exact; counters {acc.counters()}")
        problems += [f"selftest: {bad} vectors differ"] if bad else []
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
