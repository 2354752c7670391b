"""Typed errors. Anything raised as a QmlpError is the user's to fix: the CLI prints it as one
line ``qmlp: error: ...`` and exits with status 2 (no traceback without --debug)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["did_you_mean", "QmlpError", "ModelError", "UnsupportedOpError", "FoldingError", "ToolError", "ConfigError",
           "InputError"]


class QmlpError(Exception):
    """Base class: the message must name the file/node/field at fault and say what to do."""

    exit_status = 2


class ModelError(QmlpError):
    """The input model is unreadable or outside what qmlp can lower exactly."""


class UnsupportedOpError(ModelError):
    """A node whose op type is not in the supported set."""


class FoldingError(QmlpError):
    """A requested PE/SIMD folding is illegal or no folding can meet the target."""


class ConfigError(QmlpError):
    """Bad command-line value, board name, or configuration file."""


class ToolError(QmlpError):
    """An external tool (Verilator, Yosys, Vivado) is missing or failed."""


class InputError(QmlpError, ValueError):
    """Data read from outside (a file, a field, an array, a name) breaks a stated rule; the
    message names the file and the field. Raised by the validation boundary, qmlp.untrusted."""


def did_you_mean(text: str, names: Iterable[str]) -> str | None:
    """The known name ``text`` most likely meant: equal ignoring case, '-' and '_' (``PYNQ-Z2``,
    ``pynqz2``), else the closest spelling (``ultra96`` -> ``ultra96v2``), else None."""
    import difflib

    def norm(name: str) -> str:
        return name.lower().replace("-", "").replace("_", "")

    by_norm = {norm(name): name for name in names}
    if norm(text) in by_norm:
        return by_norm[norm(text)]
    close = difflib.get_close_matches(norm(text), list(by_norm), n=1, cutoff=0.6)
    return by_norm[close[0]] if close else None
