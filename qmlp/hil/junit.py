"""JUnit XML for a HIL suite report, the format CI servers (Jenkins, GitLab, GitHub actions)
read: one <testsuite> named after the target, one <testcase> per case, <failure> for a wrong
answer and <error> for a case that got no usable answer."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from .suite import SuiteReport

__all__ = ["to_junit_xml", "write_junit"]


def to_junit_xml(report: SuiteReport) -> str:
    suite = ET.Element("testsuite", {
        "name": f"qmlp-hil.{report.design}",
        "tests": str(len(report.results)),
        "failures": str(sum(r.status == "fail" for r in report.results)),
        "errors": str(sum(r.status == "error" for r in report.results)),
        "skipped": "0",
        "time": f"{sum(r.seconds for r in report.results):.3f}",
    })
    props = ET.SubElement(suite, "properties")
    for key in ("target",):
        ET.SubElement(props, "property", {"name": key, "value": str(getattr(report, key))})
    for key in ("backend", "board", "engine", "clock_mhz", "qmlp"):
        if key in report.board:
            ET.SubElement(props, "property", {"name": key, "value": str(report.board[key])})
    for result in report.results:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"qmlp.hil.{report.design}", "name": result.name, "time": f"{result.seconds:.3f}"})
        if result.status in ("fail", "error"):
            tag = "failure" if result.status == "fail" else "error"
            node = ET.SubElement(case, tag, {"message": result.message, "type": tag})
            node.text = result.detail or result.message
        else:
            ET.SubElement(case, "system-out").text = f"{result.vectors} vectors: {result.message}"
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
