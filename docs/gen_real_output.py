"""Regenerate (or check) the "real output" blocks of the docs, so they cannot drift.

A block is a fenced code block right after the line ``<!-- real output -->`` in docs/*.md or
README.md. Its ``$ qmlp ...`` and ``$ cat FILE`` lines are run from the repository root, in
file order, and the lines after each are replaced by what the command printed. Inputs the
commands read (build/docs/*.npy, fold.json, build.toml) are written first by ``setup``.

    python docs/gen_real_output.py            # rewrite the blocks
    python docs/gen_real_output.py --check    # exit 1 and show the first difference (tests/test_docs_output.py)

Timings (``0.02 s``) are compared as ``#.## s``: they differ on every run, nothing else may."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- real output -->"
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMING = re.compile(r"\s*\b\d+\.\d+ s\b")  # with the padding before it: a slow step widens the column
BUILD_TOML = ('model = "../../examples/digits_ternary.onnx"\noutput_dir = "digits_staged"\ntarget_fps = "100k"\n'
              'stop_step = "fold"\n')
FOLD = {"fc0": {"PE": 4, "SIMD": 8}, "fc1": {"PE": 2, "SIMD": 8}, "fc2": {"PE": 1, "SIMD": 8}}


def setup() -> None:
    """The input files the documented commands read."""
    docs = ROOT / "build" / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    np.save(docs / "x.npy", np.load(ROOT / "examples" / "digits_ternary.npz")["x"][:8].astype(np.float32))
    np.save(docs / "can_x.npy", np.load(ROOT / "examples" / "can_ids_w2a2.npz")["x"].astype(np.float32))
    (docs / "fold.json").write_text(json.dumps(FOLD) + "\n")
    (docs / "build.toml").write_text(BUILD_TOML)


def run(command: str) -> list[str]:
    """What ``command`` (``qmlp ...`` or ``cat FILE``) prints, as lines."""
    words = shlex.split(command)
    if words[0] == "cat":
        return (ROOT / words[1]).read_text().rstrip("\n").splitlines()
    if words[0] != "qmlp":
        raise SystemExit(f"gen_real_output: cannot run {command!r} (only qmlp and cat)")
    proc = subprocess.run([sys.executable, "-m", "qmlp", *words[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    return (proc.stdout + proc.stderr).rstrip("\n").splitlines()


def blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line index of the inside of every marked fenced block."""
    found = []
    for index, line in enumerate(lines):
        if line.strip() == MARKER and index + 1 < len(lines) and lines[index + 1].startswith("```"):
            end = next(j for j in range(index + 2, len(lines)) if lines[j].startswith("```"))
            found.append((index + 2, end))
    return found


def regenerate(inside: list[str]) -> list[str]:
    out = []
    for line in inside:
        if line.startswith("$ "):
            out.append(line)
            out += run(line[2:])
    return out


def _normal(lines: list[str]) -> list[str]:
    return [TIMING.sub(" #.## s", line.rstrip()) for line in lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of rewriting; exit 1 on a difference")
    args = parser.parse_args(argv)
    setup()
    status = 0
    for path in FILES:
        lines = path.read_text().split("\n")
        changed = False
        new_lines, offset = list(lines), 0
        for first, last in blocks(lines):
            fresh = regenerate(lines[first:last])
            if args.check:
                if _normal(fresh) != _normal(lines[first:last]):
                    diff = next((f"doc: {a!r}\nnow: {b!r}" for a, b in zip(_normal(lines[first:last]), _normal(fresh))
                                 if a != b), "a different number of lines")
                    print(f"{path.relative_to(ROOT)}:{first + 1}: real output drifted\n{diff}")
                    status = 1
                continue
            new_lines[first + offset:last + offset] = fresh
            offset += len(fresh) - (last - first)
            changed = changed or fresh != lines[first:last]
        if changed:
            path.write_text("\n".join(new_lines))
            print(f"rewrote the real output in {path.relative_to(ROOT)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
