"""`-o DIR` never destroys a user's files: it replaces only an empty folder or an earlier qmlp
build (the .qmlp-build marker), anything else only with --force, and never the folder holding an
input, with or without --force. The rename into place stays atomic; identical inputs give
byte-identical builds."""

from __future__ import annotations

import os

import pytest

from qmlp.hwgen.pipeline import MARKER

from .attack import assert_refused, cli, ir_file, onnx_model


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_foreign_folder_is_kept_without_force(tmp_path):
    model = ir_file(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("two years of work")
    assert_refused(cli("compile", model, "-o", out), f"-o {out}: folder is not empty and was not written by qmlp",
                   "--force")
    assert (out / "thesis.tex").read_text() == "two years of work" and _leftovers(tmp_path) == []
    assert cli("compile", model, "-o", out, "--force").status == 0
    assert not (out / "thesis.tex").exists() and (out / MARKER).is_file() and _leftovers(tmp_path) == []


def test_empty_folder_and_earlier_build_are_replaced(tmp_path):
    model = ir_file(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    assert cli("compile", model, "-o", out).status == 0
    (out / "stale.v").write_text("from an earlier build")
    assert cli("compile", model, "-o", out).status == 0  # it holds the marker
    assert not (out / "stale.v").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("force", [False, True])
def test_folder_holding_the_model_is_never_replaced(tmp_path, force):
    (tmp_path / "models").mkdir()
    model = onnx_model(tmp_path / "models")
    (model.parent / MARKER).write_text("even a folder that looks like a build")
    for out in (model.parent, tmp_path):
        result = cli("compile", model, "-o", out, *(["--force"] if force else []))
        assert_refused(result, f"holds the model {model}")
    assert model.is_file() and sorted(p.name for p in model.parent.iterdir()) == [MARKER, model.name]


def test_folder_holding_the_folding_file_is_never_replaced(tmp_path):
    model = ir_file(tmp_path)
    out = tmp_path / "cfg"
    out.mkdir()
    folding = out / "f.json"
    folding.write_text("{}")
    assert_refused(cli("compile", model, "-o", out, "--folding", folding, "--force"), f"holds the --folding {folding}")
    assert folding.read_text() == "{}"


def test_current_directory_and_parents(tmp_path, monkeypatch):
    model = ir_file(tmp_path)
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in (".", "..", str(tmp_path)):
        assert_refused(cli("compile", model, "-o", out, "--force"), "refusing to replace the current directory")
    for out in ("/tmp", "/", os.path.expanduser("~")):
        result = cli("compile", model, "-o", out, "--force")
        assert result.status == 2 and "refusing to replace" in result.err


def test_out_under_a_file_a_symlink_or_an_impossible_place(tmp_path):
    model = ir_file(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_refused(cli("compile", model, "-o", blocker / "sub"), f"{blocker} is a file, not a folder")
    assert_refused(cli("compile", model, "-o", blocker), "exists and is not a directory")
    link = tmp_path / "link"
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("k")
    link.symlink_to(target)
    assert_refused(cli("compile", model, "-o", link, "--force"), "is a symbolic link")
    assert (target / "keep").is_file()
    assert_refused(cli("compile", model, "-o", "/proc/qmlp-cannot-be-here/out"), "cannot create the output folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_parent(tmp_path):
    model = ir_file(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert_refused(cli("compile", model, "-o", locked / "o"), "cannot create the output folder")
    finally:
        locked.chmod(0o700)


def test_two_builds_of_the_same_model_are_byte_identical(tmp_path):
    """Same model, same options, same -o (the build records its folder): every file byte-identical."""
    model = onnx_model(tmp_path)
    out = tmp_path / "out"
    trees = []
    for _ in range(2):
        assert cli("compile", model, "-o", out).status == 0
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert trees[0].keys() == trees[1].keys() and len(trees[0]) > 30
    differ = [str(path) for path in trees[0] if trees[0][path] != trees[1][path]]
    assert differ == []
