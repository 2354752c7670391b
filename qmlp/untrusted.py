"""The validation boundary for data from outside qmlp: files, names and arrays.

Everything qmlp reads from a user or a peer (``dataflow.json``, folding and board files, ``.npy``
inputs, names that end up in generated files) passes through these helpers once, where it
enters. Each check raises :class:`InputError` with one line naming the file and the field
(``where``), and says what is allowed. Nothing here trusts a type, a size or a number: JSON is
read with a size limit, without NaN/Infinity, and with nesting bounded; numbers are checked for
type, finiteness and range; arrays for shape and dtype before they are used.

Names are data, never code: :func:`quote_name` renders any user-given name (a layer name, a
design name, an ONNX file name) with every character outside a small safe set percent-encoded,
so it can sit inside a comment or string of Verilog, Tcl, C++, Python, XML or Markdown without
ending it (no newline, quote, backslash, ``*/``, ``$``, ``[``, braces or ``--``).

This module is bundled into the board driver (qmlp/boards/driver.py CORE_MODULES): stdlib, numpy
and sibling modules only.
"""

from __future__ import annotations

import json
import math
import re
from itertools import chain
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .datatypes import DataType
from .errors import InputError

__all__ = ["InputError", "LIMITS", "read_json", "parse_json", "mapping", "field", "integer", "number",
           "string", "dtype", "int_array", "float_vector", "finite_floats", "all_finite", "quote_name", "safe_ident", "printable"]


class _Limits:
    """Stated limits on untrusted data (docs/troubleshooting.md "Limits")."""

    json_bytes = 256 << 20  # a dataflow.json of ~50 M weights
    json_depth = 64  # nesting of JSON arrays/objects (dataflow.json needs 4)
    name_chars = 256  # layer and design names
    features = 1 << 16  # inputs or outputs of one layer
    layers = 1024
    weights = 1 << 26  # all layers together
    data_bits = 16  # weights, inputs and activations (accumulators are derived, up to 64)
    input_bytes = 1 << 30  # a .npy input array


LIMITS = _Limits()


# --- JSON ---------------------------------------------------------------------------------------

class _NonFinite(Exception):
    """NaN, Infinity or -Infinity in JSON text (Python's json accepts them by default)."""


def _refuse_constant(token: str) -> Any:
    raise _NonFinite(token)


def _depth(data: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth)
            if depth <= LIMITS.json_depth:  # deeper is refused anyway: stop walking
                children = value.values() if isinstance(value, dict) else value
                stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return deepest


def parse_json(text: str | bytes, where: str) -> Any:
    """Parse JSON text from outside: bounded size and depth, no NaN/Infinity, one-line errors."""
    if len(text) > LIMITS.json_bytes:
        raise InputError(f"{where}: {len(text):,} bytes, more than the {LIMITS.json_bytes >> 20} MiB qmlp reads")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply (limit {LIMITS.json_depth} levels)") from None
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: not valid JSON (line {error.lineno}: {error.msg})") from None
    except _NonFinite as error:
        raise InputError(f"{where}: non-finite number {error} (JSON has no NaN or Infinity)") from None
    except ValueError as error:  # an integer beyond Python's 4300-digit limit
        raise InputError(f"{where}: number out of range ({str(error).splitlines()[0]})") from None
    if _depth(data) > LIMITS.json_depth:
        raise InputError(f"{where}: JSON nested too deeply (limit {LIMITS.json_depth} levels)")
    return data


def read_json(path: str | Path, what: str) -> Any:
    """Read and parse a JSON file named on the command line as ``what`` (e.g. ``--folding``)."""
    path = Path(path)
    where = f"{what} {path}"
    try:
        if path.is_dir():
            raise InputError(f"{where}: is a directory; pass a JSON file")
        size = path.stat().st_size
        if size > LIMITS.json_bytes:
            raise InputError(f"{where}: {size:,} bytes, more than the {LIMITS.json_bytes >> 20} MiB qmlp reads")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except OSError as error:
        raise InputError(f"{where}: cannot be read ({error.strerror or error})") from None
    return parse_json(raw, where)


# --- fields -------------------------------------------------------------------------------------

def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{where}: must be a JSON object, got {_kind(value)}")
    return value


def field(data: Mapping[str, Any], key: str, where: str, default: Any = ...) -> Any:
    """``data[key]``; a missing key is an error unless a default is given."""
    if key in data:
        return data[key]
    if default is ...:
        raise InputError(f"{where}: field '{key}' is missing")
    return default


def integer(value: Any, where: str, lo: int, hi: int) -> int:
    """An integer (not a bool, not a float) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: must be an integer, got {_show(value)}")
    if not lo <= value <= hi:
        raise InputError(f"{where}: {_show(value)} outside {lo}..{hi}")
    return value


def number(value: Any, where: str, *, positive: bool = False) -> float:
    """A finite number (int or float, not a bool); ``positive`` also refuses <= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: must be a number, got {_show(value)}")
    result = float(value) if isinstance(value, float) or abs(value) < 10**300 else math.inf
    if not math.isfinite(result):
        raise InputError(f"{where}: {_show(value)} is not a finite number")
    if positive and not result > 0:
        raise InputError(f"{where}: {_show(value)} must be positive")
    return result


def string(value: Any, where: str, max_chars: int = LIMITS.name_chars) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: must be a string, got {_show(value)}")
    if not 1 <= len(value) <= max_chars:
        raise InputError(f"{where}: must have 1..{max_chars} characters, got {len(value)}")
    return value


def dtype(value: Any, where: str, max_bits: int = 64) -> DataType:
    """A data type name (BIPOLAR, TERNARY, INTk, UINTk) of at most ``max_bits`` bits."""
    name = string(value, where, 16)
    try:
        parsed = DataType.parse(name)
    except ValueError:
        raise InputError(f"{where}: {_show(value)} is not a data type (BIPOLAR, TERNARY, INTk or UINTk)") from None
    if parsed.bits > max_bits:
        raise InputError(f"{where}: {parsed} is wider than the {max_bits} bits qmlp supports here")
    return parsed


def int_array(value: Any, where: str, shape: tuple[int | None, ...], lo: int, hi: int) -> np.ndarray:
    """JSON nested lists of integers -> int64 array of ``shape`` (None = any length) within [lo, hi].
    Floats, bools, ragged rows and out-of-range values are refused, never rounded or wrapped."""
    try:
        array = np.array(value)
    except (ValueError, OverflowError):
        raise InputError(f"{where}: must be {len(shape)}-D nested lists of integers with equal row lengths") from None
    if array.size == 0 and array.ndim == len(shape):
        array = array.astype(np.int64)
    if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape)):
        want_text = " x ".join("n" if n is None else str(n) for n in shape)
        raise InputError(f"{where}: shape {array.shape} where {want_text} is needed")
    if array.dtype.kind != "i" or _holds_bool(value, array.ndim):  # numpy turns True into 1
        raise InputError(f"{where}: every entry must be an integer within {lo}..{hi}")
    if array.size and (array.min() < lo or array.max() > hi):
        bad = array[(array < lo) | (array > hi)].ravel()[0]
        raise InputError(f"{where}: value {bad} outside {lo}..{hi}")
    return array.astype(np.int64)


def _holds_bool(value: Any, ndim: int) -> bool:
    rows = [value]
    for _ in range(ndim - 1):
        rows = list(chain.from_iterable(rows))
    return any(item is True or item is False for item in chain.from_iterable(rows))


def float_vector(value: Any, where: str, n: int, *, nonzero: bool = False) -> np.ndarray:
    """A JSON list of ``n`` finite numbers -> float64 (``nonzero`` refuses zeros)."""
    if not isinstance(value, list) or len(value) != n:
        raise InputError(f"{where}: must be a list of {n} numbers, got {_kind(value)}"
                         f"{f' of {len(value)}' if isinstance(value, list) else ''}")
    for index, item in enumerate(value):
        number(item, f"{where}[{index}]")
    array = np.array(value, dtype=np.float64)
    if nonzero and np.any(array == 0):
        raise InputError(f"{where}[{int(np.argmax(array == 0))}]: must be nonzero")
    return array


_TINY = np.zeros(0, np.float32)  # 2^-100 each; grown on demand by all_finite, only ever read


def all_finite(x: np.ndarray) -> bool:
    """Is every value of float32 C-contiguous ``x`` finite? One BLAS dot product with 2^-100:
    finite values give at most 2^28 each (no overflow), NaN stays NaN and infinities infinite
    without raising floating-point warnings (except +inf beside -inf); no temporary, and ~0.5 us
    for a small array, cheaper per call than a reduction."""
    global _TINY
    flat = x.ravel()
    if len(_TINY) < len(flat):
        _TINY = np.full(max(len(flat), 2 * len(_TINY)), 2.0 ** -100, np.float32)
    return math.isfinite(np.dot(flat, _TINY[:len(flat)]))


def finite_floats(x: np.ndarray, where: str) -> np.ndarray:
    """A numeric array as float32, refusing NaN/inf (before and after the cast, which can overflow)."""
    if x.dtype.kind not in "fiu":
        raise InputError(f"{where}: dtype {x.dtype} is not a real number type (float or integer)")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = x.astype(np.float32)
    bad = ~np.isfinite(converted)
    if bad.any():
        index = np.argwhere(bad)[0].tolist()
        raise InputError(f"{where}: {int(bad.sum())} values are NaN or infinite (or beyond float32), first at "
                         f"index {index} ({x[tuple(index)]}); the input quantizer has no code for them")
    return converted


# --- names in generated files ---------------------------------------------------------------------

_SAFE = re.compile(r"[A-Za-z0-9_.:+=,@ /-]")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def quote_name(name: str, max_chars: int = 80) -> str:
    """A user-given name made safe for a comment or string in any generated language: characters
    outside ``[A-Za-z0-9_.:+=,@ /-]`` become ``%XX`` (UTF-8 bytes), ``--`` and ``/*``/``*/``
    cannot form (``-`` after ``-`` and ``*`` are encoded), and long names are cut with ``...``."""
    out: list[str] = []
    length = 0
    for ch in str(name):
        if _SAFE.fullmatch(ch) and not (ch == "-" and out and out[-1] == "-"):
            piece = ch
        else:
            piece = "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        if length + len(piece) > max_chars - 3:  # cut between characters, never inside an escape
            return "".join(out) + "..."
        out.append(piece)
        length += len(piece)
    return "".join(out)


def printable(text: str) -> str:
    """``text`` on one line with no terminal control: a newline or an escape sequence in a file
    or layer name quoted in a message or a table is shown as ``\\n`` / ``\\x1b``, never acted on."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def safe_ident(name: str, fallback: str = "qmlp") -> str:
    """An identifier derived from a user's name, for places where one must become a word (a Vivado
    project, a folder in a shell command): letters, digits and '_' only, letter first, <= 64
    characters; ``fallback`` when nothing usable is left."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", str(name)).strip("_")[:64]
    return text if _IDENT.match(text) else fallback


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
