"""The user documentation stays honest: every CLI option is documented in docs/cli.md, every
error message qmlp can print is covered by docs/troubleshooting.md, docs/ir.md names every IR
field, and every relative link in the docs resolves.

Error sites are found statically (ast, no imports): the QmlpError subclasses are the classes whose
bases lead to QmlpError anywhere under qmlp/, and a raise site's message pattern is its string or
f-string with every ``{...}`` replaced by a wildcard."""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from qmlp import ir
from qmlp.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "qmlp"

# Options every command has; docs/cli.md documents them once, under "Common options".
COMMON_OPTIONS = {"-h", "--help", "--debug"}

# Calls that build a QmlpError message from their arguments instead of raising the class
# directly: (file, function name) -> index of the argument holding the message text.
MESSAGE_HELPERS = {
    # _Reader.fail(field, problem) -> ConfigError("board file {source}: field '{field}' {problem}")
    ("qmlp/boards/board.py", "fail"): 1,
    # Refusal(code, message) is sent to the client, which raises RemoteError("agent refused: CODE: message")
    ("qmlp/hil/agent.py", "Refusal"): 1,
    # the agent's error frames, _send_error(conn, code, message) / _refuse_quietly(conn, code, message)
    ("qmlp/hil/agent.py", "_send_error"): 2,
    ("qmlp/hil/agent.py", "_refuse_quietly"): 2,
    # fail(field, problem, source) -> ConfigError("{source}: {field}: {problem}") (the explore spec)
    ("qmlp/explore/spec.py", "fail"): 1,
}

# Error constructions whose message is built at run time and has no literal text to look for:
# (file, unparsed message argument) -> reason. Keep this short; prefer a literal prefix.
# (RemoteError is raised as ``(BoardBusy if ... else RemoteError)(code, message)`` in
# qmlp/hil/client.py: its text is the agent's Refusal message, covered through MESSAGE_HELPERS.)
DYNAMIC_MESSAGES: dict[tuple[str, str], str] = {
    ("qmlp/hil/agent.py", "str(error)"): "forwards a ProtocolError/NoRails/BackendError/InputError text, each covered at its raise site",
    ("qmlp/hil/agent.py", "str(refusal)"): "forwards a Refusal text, covered at its Refusal(...) call",
}

# How much literal text of a message must appear in troubleshooting.md (the rest may change
# without breaking the docs; the start names the problem).
PREFIX_CHARS = 40


@dataclass(frozen=True)
class RaiseSite:
    path: str
    line: int
    error: str
    parts: tuple[str | None, ...]  # literal text, or None for a {placeholder}

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line} ({self.error})"


def _modules() -> dict[str, ast.Module]:
    return {p.relative_to(ROOT).as_posix(): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def _error_classes(trees: dict[str, ast.Module]) -> set[str]:
    bases: dict[str, set[str]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(ast.unparse(b).split(".")[-1] for b in node.bases)
    # DriverError: the board-side driver runs without qmlp, so it is a RuntimeError, but users see it.
    names, grew = {"QmlpError", "DriverError"}, True
    while grew:
        grew = False
        for name, parents in bases.items():
            if name not in names and parents & names:
                names.add(name)
                grew = True
    return names


def _parts(node: ast.expr) -> tuple[str | None, ...] | None:
    """Literal pieces of a message expression, None where a value is substituted."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.JoinedStr):
        return tuple(v.value if isinstance(v, ast.Constant) else None for v in node.values)
    if isinstance(node, ast.BinOp):  # "..." % x or "..." + x: the left side leads
        left = _parts(node.left)
        return None if left is None else left + (None,)
    return None


def _call_name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ast.unparse(func)


def raise_sites() -> tuple[list[RaiseSite], list[str]]:
    """Every message qmlp can raise as a QmlpError, and the sites whose text cannot be read."""
    trees = _modules()
    errors = _error_classes(trees)
    sites, unreadable, exempt_seen = [], [], set()
    for path, tree in trees.items():
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            name = _call_name(call.func)
            index = 0 if name in errors else MESSAGE_HELPERS.get((path, name))
            if index is None:
                continue
            if len(call.args) <= index:
                unreadable.append(f"{path}:{call.lineno}: {name} without a message")
                continue
            message = call.args[index]
            parts = _parts(message)
            if parts is None:
                exempt_seen.add((path, ast.unparse(message)))
                if (path, ast.unparse(message)) not in DYNAMIC_MESSAGES:
                    unreadable.append(f"{path}:{call.lineno}: {name}({ast.unparse(message)[:60]})")
                continue
            sites.append(RaiseSite(path, call.lineno, name, parts))
    unreadable += [f"{path}: exemption for {text!r} matches no call; drop it"
                   for path, text in DYNAMIC_MESSAGES if (path, text) not in exempt_seen]
    return sites, unreadable


def prefix_pattern(parts: tuple[str | None, ...]) -> re.Pattern[str] | None:
    """Regex for the message's start: leading placeholders skipped, then literal text (up to
    PREFIX_CHARS characters, first line only) with every placeholder matching anything."""
    pieces: list[str] = []
    literal = 0
    started = False
    for part in parts:
        if part is None:
            if started:
                pieces.append(r".*?")
            continue
        text = part.split("\n", 1)[0]
        if not started:
            text = text.lstrip(" :,;./'\"")
            if not text:
                continue
            started = True
        take = text[: max(0, PREFIX_CHARS - literal)]
        pieces.append(r"\s*".join(re.escape(word) for word in take.split()) + (r"\s+" if take.endswith(" ") else ""))
        literal += len(take)
        if literal >= PREFIX_CHARS or "\n" in part:
            break
    if not started or literal < 3:
        return None
    return re.compile("".join(pieces).rstrip(r"\s+") if pieces[-1].endswith(r"\s+") else "".join(pieces))


# --- (a) CLI reference --------------------------------------------------------------------------

def _sections(text: str) -> dict[str, str]:
    """Markdown ``## heading`` -> the text up to the next ``## ``."""
    out, name, lines = {}, None, []
    for line in text.splitlines():
        if line.startswith("## "):
            if name is not None:
                out[name] = "\n".join(lines)
            name, lines = line[3:].strip(), []
        else:
            lines.append(line)
    if name is not None:
        out[name] = "\n".join(lines)
    return out


def _subparsers() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)


def _documented_options(section: str) -> set[str]:
    """Option strings in the first column of the section's option table."""
    found = set()
    for line in section.splitlines():
        if line.startswith("| `-"):
            cell = line.split("|")[1]
            found.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", cell))
    return found


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_md_documents_every_option(command: str) -> None:
    sections = _sections((DOCS / "cli.md").read_text())
    title = f"qmlp {command}"
    assert title in sections, f"docs/cli.md has no '## {title}' section"
    parser = _subparsers()[command]
    actual = {s for a in parser._actions for s in a.option_strings} - COMMON_OPTIONS
    documented = _documented_options(sections[title])
    assert actual - documented == set(), f"{title}: options missing from docs/cli.md's table"
    assert documented - actual == set(), f"{title}: docs/cli.md documents options qmlp does not have"
    positionals = [a.metavar or a.dest for a in parser._actions if not a.option_strings]
    for name in positionals:
        assert name in sections[title], f"{title}: positional {name} not described"


def test_cli_md_example_command_lines_still_parse() -> None:
    """The pasted runs must use today's options: every ``$ qmlp ...`` line parses."""
    lines = [line[2:] for line in (DOCS / "cli.md").read_text().splitlines() if line.startswith("$ qmlp ")]
    missing = [c for c in COMMANDS if not any(line.split()[1] == c for line in lines)]
    assert missing == [], f"docs/cli.md has no example run of {missing}"
    parser = build_parser()
    for line in lines:
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"docs/cli.md example no longer parses: {line}")


def test_cli_md_common_options() -> None:
    sections = _sections((DOCS / "cli.md").read_text())
    common = sections.get("Common options", "")
    for option in COMMON_OPTIONS | {"--version"}:
        assert f"`{option}" in common, f"docs/cli.md 'Common options' lacks {option}"
    for command in COMMANDS:
        assert f"qmlp {command}" in sections, command


# --- (b) troubleshooting ------------------------------------------------------------------------

def test_every_error_message_is_in_troubleshooting() -> None:
    sites, unreadable = raise_sites()
    assert unreadable == [], "messages the docs test cannot read (add a literal prefix or an exemption)"
    assert len(sites) > 200  # the scan found the raise sites (the package has ~300)
    text = (DOCS / "troubleshooting.md").read_text()
    missing = []
    for site in sites:
        pattern = prefix_pattern(site.parts)
        if pattern is None:
            missing.append(f"{site.where}: no literal text in the message; give it one")
        elif not pattern.search(text):
            shown = "".join(p if p is not None else "{...}" for p in site.parts)
            missing.append(f"{site.where}: {shown[:90]}")
    assert missing == [], "errors not covered by docs/troubleshooting.md:\n" + "\n".join(missing)


def test_scanner_sees_direct_and_helper_built_messages() -> None:
    sites, _ = raise_sites()
    kinds = {(site.path, site.error) for site in sites}
    assert ("qmlp/frontend/load.py", "ModelError") in kinds
    assert ("qmlp/hil/protocol.py", "FrameTooLarge") in kinds  # a subclass defined outside errors.py
    for helper in MESSAGE_HELPERS:
        assert helper in kinds, f"no call of message helper {helper}; update MESSAGE_HELPERS"


def test_prefix_pattern_matches_placeholders_and_skips_leading_ones() -> None:
    pattern = prefix_pattern(("--input ", None, ": no such file"))
    assert pattern.search("``--input {path}: no such file``")
    assert not pattern.search("--input x: not a numpy array")
    lead = prefix_pattern((None, ": ONNX graph has no nodes; is this really an exported model?"))
    assert lead.search("`{path}: ONNX graph has no nodes; is this really`")
    assert prefix_pattern((None,)) is None


# --- (c) links ----------------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", text, flags=re.M)}


def _markdown_files() -> list[Path]:
    files = sorted(DOCS.glob("*.md"))
    for extra in (ROOT / "README.md",):
        if extra.exists():
            files.append(extra)
    return files


@pytest.mark.parametrize("doc", _markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc: Path) -> None:
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)
    broken = []
    for match in _LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.exists():
            broken.append(f"{target}: {resolved} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert broken == [], f"{doc.name}: broken links\n" + "\n".join(broken)


def test_docs_index_lists_every_doc() -> None:
    index = (DOCS / "README.md").read_text()
    for doc in DOCS.glob("*.md"):
        if doc.name != "README.md":
            assert f"({doc.name})" in index, f"docs/README.md does not link {doc.name}"


# --- IR reference -------------------------------------------------------------------------------

def test_ir_md_names_every_field_and_the_schema_version() -> None:
    text = (DOCS / "ir.md").read_text()
    assert f'"schema_version": {ir.SCHEMA_VERSION}' in text or f'"schema_version":{ir.SCHEMA_VERSION}' in text
    keys = set(ir.to_json(_tiny_dataflow()))
    keys |= {"dtype", "qmin", "qmax", "scale", "bias", "weight_dtype", "in_dtype", "acc_dtype", "weights",
             "activation", "folding", "out_dtype", "thresholds", "in_elems_per_beat", "out_elems_per_beat"}
    keys |= {f.name for f in fields(ir.Folding)}
    missing = sorted(k for k in keys if f"`{k}`" not in text)
    assert missing == [], f"docs/ir.md does not describe {missing}"


def _tiny_dataflow() -> ir.Dataflow:
    from qmlp.testing import random_dataflow
    return random_dataflow(0)
