"""OUT/deploy: manifest of every file, bitstream slots, and the board-side check command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .helpers import folded
from qmlp.boards import emit_board_files
from qmlp.boards.deploy import sha256
from qmlp.boards.emit import SUBDIRS
from qmlp.datatypes import INT
from qmlp.errors import ConfigError
from qmlp.ir import load, replace


def check(root, *args):
    proc = subprocess.run([sys.executable, "-m", "qmlp_driver.check", *args], cwd=root, capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout


def test_manifest_lists_every_file_with_its_hash(out_dir):
    df = folded()
    emit_board_files(df, "ultra96v2", out_dir)
    root = out_dir / "deploy"
    manifest = json.loads((root / "manifest.json").read_text())
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert all(manifest["files"][rel] == sha256(root / rel) for rel in on_disk)
    assert set(manifest["slots"]) == {"bitstream/qmlp.bit", "bitstream/qmlp.hwh"}
    assert {"qmlp_driver/accelerator.py", "qmlp_driver/_core/packing.py", "dataflow.json"} <= on_disk
    assert manifest["board"] == "ultra96v2" and manifest["generator"].startswith("qmlp ")
    assert load(root / "dataflow.json").name == df.name


def test_check_command_finds_empty_slots_changes_and_bad_bitstreams(out_dir):
    emit_board_files(folded(), "zcu104", out_dir)
    root = out_dir / "deploy"
    status, out = check(root)
    assert status == 1 and "bitstream/qmlp.bit: empty slot (written by 'make bitstream' in OUT/vivado)" in out
    (root / "bitstream" / "qmlp.bit").write_bytes(b"bit")
    (root / "bitstream" / "qmlp.hwh").write_text("<hwh/>")
    status, out = check(root)
    assert status == 0 and "every file matches manifest.json" in out
    (root / "bitstream" / "SHA256SUMS").write_text(f"{sha256(root / 'bitstream' / 'qmlp.bit')}  qmlp.bit\n"
                                                    f"{'0' * 64}  qmlp.hwh\n")
    status, out = check(root)
    assert status == 1 and out.strip() == "qmlp check: bitstream/qmlp.hwh: does not match bitstream/SHA256SUMS"
    (root / "bitstream" / "SHA256SUMS").unlink()
    (root / "dataflow.json").write_text((root / "dataflow.json").read_text().replace('"argmax":false', '"argmax":true'))
    (root / "qmlp_driver" / "__main__.py").unlink()
    status, out = check(root, "--root", str(root))
    assert status == 1 and out.splitlines() == ["qmlp check: dataflow.json: modified (sha256 differs from the manifest)",
                                                "qmlp check: qmlp_driver/__main__.py: missing"]


def test_emit_writes_three_directories_and_replaces_old_ones(out_dir):
    (out_dir / "driver").mkdir()
    (out_dir / "driver" / "stale.txt").write_text("old")
    files = emit_board_files(folded(), "kv260", out_dir)
    assert {f.relative_to(out_dir).parts[0] for f in files} == set(SUBDIRS) | {"README.md"}  # OUT/README.md too
    assert not (out_dir / "driver" / "stale.txt").exists()
    assert sorted(p.name for p in out_dir.iterdir()) == ["README.md", "deploy", "driver", "ip", "vivado"]


def test_failed_emit_leaves_out_dir_untouched(out_dir):
    df = folded()
    emit_board_files(df, "zcu104", out_dir)
    before = {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"not folded \(no stream format\)"):
        emit_board_files(replace(df, stream=None), "zcu104", out_dir)
    with pytest.raises(ConfigError, match=r"unknown board 'zcu105'"):
        emit_board_files(df, "zcu105", out_dir)
    wide = folded(simd=12, input_dtype=INT(16), widths=(12, 4, 2))
    emit_board_files(wide, "zcu104", out_dir)  # 24-byte beats still fit a 32-byte DMA stream
    after = {p for p in out_dir.rglob("*") if p.is_file()}
    assert set(before) == after and not list(out_dir.glob(".boards-tmp-*"))
