"""Boards as data: one JSON file per board, loaded into a frozen ``Board`` with every field checked.

Search order for ``get_board(name)``: a path to a ``.json`` file; then ``<dir>/<name>.json`` for
each directory in ``QMLP_BOARDS_PATH`` (``os.pathsep``-separated, so a user file can shadow a
built-in one); then the files shipped in ``qmlp/boards/data``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, did_you_mean
from ..untrusted import read_json
from .ps import PS_SPECS

__all__ = ["Clock", "DmaPort", "Resources", "Board", "BOARD_SCHEMA_VERSION", "BUILTIN_DIR",
           "parse_board", "load_board_file", "board_dirs", "known_boards", "get_board"]

BOARD_SCHEMA_VERSION = 1
BUILTIN_DIR = Path(__file__).parent / "data"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_RESOURCE_KEYS = ("LUT", "FF", "BRAM36", "URAM", "DSP")
_FIELDS = {"schema", "schema_version", "name", "description", "part", "family", "board_part", "ps",
           "clocks", "control_port", "dma", "resources", "power_rails", "finn_board"}


@dataclass(frozen=True)
class Clock:
    name: str  # PS fabric clock pin, e.g. pl_clk0 / FCLK_CLK0
    default_mhz: float


@dataclass(frozen=True)
class DmaPort:
    port: str  # PS slave port the AXI DMA masters, e.g. S_AXI_HP0_FPD
    width_bits: int


@dataclass(frozen=True)
class Resources:
    lut: int
    ff: int
    bram36: int
    uram: int
    dsp: int

    def counts(self) -> dict[str, int]:
        """The totals qmlp's designs draw on, by report name (URAM is never used)."""
        return {"LUT": self.lut, "FF": self.ff, "BRAM36": self.bram36, "DSP": self.dsp}


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    part: str
    family: str  # xcup (Zynq UltraScale+) or xc7 (Zynq-7000)
    board_part: str  # Vivado board part; its preset configures DDR and MIO
    ps_ip: str
    ps_preset: str  # "board": apply the board part's PS preset
    clocks: tuple[Clock, ...]
    control_port: str
    dma: DmaPort
    resources: Resources
    power_rails: tuple[str, ...]
    finn_board: str | None
    source: str  # file it was read from, for messages

    @property
    def clock(self) -> Clock:
        """The clock the accelerator runs on (the first one listed)."""
        return self.clocks[0]


class _Reader:
    """Field access that names the file and the field in every error."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self.data, self.source = data, source

    def fail(self, field: str, problem: str) -> ConfigError:
        return ConfigError(f"board file {self.source}: field '{field}' {problem}")

    def get(self, field: str, kind: type | tuple[type, ...], where: Mapping[str, Any] | None = None,
            prefix: str = "") -> Any:
        data = self.data if where is None else where
        name = prefix + field
        if field not in data:
            raise self.fail(name, "is missing")
        value = data[field]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(name, f"must be {_kind_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(name, f"must be {_kind_name(kind)}, got {value!r}")
        return value

    def positive(self, field: str, where: Mapping[str, Any], prefix: str, kind: type | tuple = int) -> Any:
        value = self.get(field, kind, where, prefix)
        if value <= 0:
            raise self.fail(prefix + field, f"must be positive, got {value!r}")
        return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def parse_board(data: Any, source: str) -> Board:
    """Validate one board document; raise ConfigError naming ``source`` and the bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"board file {source}: must hold a JSON object")
    r = _Reader(data, source)
    if data.get("schema") != "qmlp.board":
        raise r.fail("schema", "must be \"qmlp.board\"")
    if data.get("schema_version") != BOARD_SCHEMA_VERSION:
        raise r.fail("schema_version", f"must be {BOARD_SCHEMA_VERSION}, got {data.get('schema_version')!r}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise r.fail(unknown[0], f"is not a board field (known: {', '.join(sorted(_FIELDS))})")
    name = r.get("name", str)
    if not _NAME.match(name):
        raise r.fail("name", f"must be lower-case letters, digits, '-', '_' or '.', got {name!r}")
    ps = r.get("ps", dict)
    ps_ip = r.get("ip", str, ps, "ps.")
    spec = PS_SPECS.get(ps_ip)
    if spec is None:
        raise r.fail("ps.ip", f"must be one of {', '.join(PS_SPECS)}, got {ps_ip!r}")
    preset = r.get("preset", str, ps, "ps.")
    if preset != "board":
        raise r.fail("ps.preset", f"must be \"board\" (apply the board part's preset), got {preset!r}")
    family = r.get("family", str)
    if family not in spec.families:
        raise r.fail("family", f"must be {' or '.join(spec.families)} for {ps_ip}, got {family!r}")
    clocks = []
    for i, clock in enumerate(r.get("clocks", list)):
        prefix = f"clocks[{i}]."
        if not isinstance(clock, dict):
            raise r.fail(f"clocks[{i}]", "must be an object with name and default_mhz")
        pin = r.get("name", str, clock, prefix)
        if pin not in spec.clocks:
            raise r.fail(prefix + "name", f"must be a {ps_ip} clock ({', '.join(spec.clocks)}), got {pin!r}")
        clocks.append(Clock(pin, float(r.positive("default_mhz", clock, prefix, (int, float)))))
    if not clocks:
        raise r.fail("clocks", "must list at least one PL clock")
    control = r.get("control_port", str)
    if control not in spec.control_ports:
        raise r.fail("control_port", f"must be one of {', '.join(spec.control_ports)}, got {control!r}")
    dma = r.get("dma", dict)
    port = r.get("port", str, dma, "dma.")
    if port not in spec.dma_ports:
        raise r.fail("dma.port", f"must be one of {', '.join(spec.dma_ports)}, got {port!r}")
    width = r.get("width_bits", int, dma, "dma.")
    if width not in spec.dma_widths:
        raise r.fail("dma.width_bits", f"must be one of {spec.dma_widths} for {ps_ip}, got {width!r}")
    res = r.get("resources", dict)
    counts = [r.get(key, int, res, "resources.") for key in _RESOURCE_KEYS]
    if any(c < 0 for c in counts):
        raise r.fail("resources", f"counts must be >= 0, got {dict(zip(_RESOURCE_KEYS, counts))}")
    rails = r.get("power_rails", list)
    if not all(isinstance(rail, str) and rail for rail in rails):
        raise r.fail("power_rails", "must be a list of non-empty rail names")
    finn = data.get("finn_board")
    if finn is not None and not isinstance(finn, str):
        raise r.fail("finn_board", f"must be a string or null, got {finn!r}")
    part, board_part = r.get("part", str), r.get("board_part", str)
    for field, value in (("part", part), ("board_part", board_part)):
        if not value or any(ch.isspace() or ch in "{}[]$\"\\;" for ch in value):
            raise r.fail(field, f"must be a Vivado part name without spaces or Tcl specials, got {value!r}")
    return Board(
        name=name, description=str(data.get("description", "")), part=part, family=family,
        board_part=board_part, ps_ip=ps_ip, ps_preset=preset, clocks=tuple(clocks), control_port=control,
        dma=DmaPort(port, width), resources=Resources(*counts), power_rails=tuple(rails),
        finn_board=finn, source=source,
    )


def load_board_file(path: str | Path) -> Board:
    """Read and validate one board JSON file."""
    path = Path(path)
    return parse_board(read_json(path, "board file"), str(path))  # InputError: size, depth, syntax


def board_dirs() -> list[Path]:
    """Directories searched for ``<name>.json``, user ones (QMLP_BOARDS_PATH) first."""
    user = [Path(p) for p in os.environ.get("QMLP_BOARDS_PATH", "").split(os.pathsep) if p]
    return [*user, BUILTIN_DIR]


def known_boards() -> dict[str, Path]:
    """Board name -> file, first directory wins."""
    found: dict[str, Path] = {}
    for directory in board_dirs():
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def get_board(name: str | Path) -> Board:
    """A board by name (``zcu104``) or by a path to its JSON file.

    The file's ``name`` field must match the file name, so a board is found the way it is called."""
    text = str(name)
    if text.endswith(".json") or os.sep in text:
        return load_board_file(text)
    boards = known_boards()
    if text not in boards:
        guess = did_you_mean(text, boards)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise ConfigError(f"unknown board {text!r}; {hint}known boards: {', '.join(boards)} "
                          f"(or pass a board JSON file / add a directory to QMLP_BOARDS_PATH)")
    board = load_board_file(boards[text])
    if board.name != text:
        raise ConfigError(f"board file {boards[text]}: field 'name' is {board.name!r} but the file is "
                          f"named {text}.json; make them match")
    return board
