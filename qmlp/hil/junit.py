"""JUnit XML for a HIL suite report, the format CI servers (Jenkins, GitLab, GitHub actions)
read: one <testsuite> named after the target, one <testcase> per case, <failure> for a wrong
answer and <error> for a case that got no usable answer.

Names and messages can carry anything a board or an agent sent back. ElementTree escapes ``&``,
``<``, ``>`` and quotes, but writes characters that XML 1.0 forbids outright (the C0 controls but
tab, newline and carriage return; lone surrogates; U+FFFE/U+FFFF) as they are, which makes the
file unreadable: :func:`xml_text` shows each of them as a Python-style escape (``\\x00``) instead."""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from .suite import SuiteReport

__all__ = ["to_junit_xml", "write_junit", "xml_text"]

# everything outside XML 1.0's Char production
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """``str(value)`` with every character XML 1.0 cannot hold replaced by its escape."""
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"),
                        str(value))


def to_junit_xml(report: SuiteReport) -> str:
    suite = ET.Element("testsuite", {
        "name": xml_text(f"qmlp-hil.{report.design}"),
        "tests": str(len(report.results)),
        "failures": str(sum(r.status == "fail" for r in report.results)),
        "errors": str(sum(r.status == "error" for r in report.results)),
        "skipped": "0",
        "time": f"{sum(r.seconds for r in report.results):.3f}",
    })
    props = ET.SubElement(suite, "properties")
    for key in ("target",):
        ET.SubElement(props, "property", {"name": key, "value": xml_text(getattr(report, key))})
    for key in ("backend", "board", "engine", "clock_mhz", "qmlp"):
        if key in report.board:
            ET.SubElement(props, "property", {"name": key, "value": xml_text(report.board[key])})
    for result in report.results:
        case = ET.SubElement(suite, "testcase", {
            "classname": xml_text(f"qmlp.hil.{report.design}"), "name": xml_text(result.name),
            "time": f"{result.seconds:.3f}"})
        if result.status in ("fail", "error"):
            tag = "failure" if result.status == "fail" else "error"
            node = ET.SubElement(case, tag, {"message": xml_text(result.message), "type": tag})
            node.text = xml_text(result.detail or result.message)
        else:
            ET.SubElement(case, "system-out").text = xml_text(f"{result.vectors} vectors: {result.message}")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(report: SuiteReport, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename), so a reader never sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(to_junit_xml(report))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
