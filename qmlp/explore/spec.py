"""The ``qmlp explore`` spec: a YAML (or TOML) file read into a frozen ``ExploreSpec``.

Every field has a default (docs/explore.md lists them); unknown fields, wrong types and values
out of range are a ``ConfigError`` naming the file and the field (``space.acts``). A spec expands
into trial configurations (``TrialConfig``: what determines one trained model) and design
targets (``Target``: board x throughput x clock); both are plain values, hashed into the keys of
the results store, so re-running the same spec finds its finished trials.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConfigError
from ..quantize import ACT_BITS, WEIGHT_RECIPES

__all__ = ["ExploreSpec", "TrialConfig", "Target", "Search", "FrontOptions", "BestRule", "TrialResources",
           "read_spec", "parse_spec", "fps_label", "BUILTIN_DATASETS", "fail"]

BUILTIN_DATASETS = ("can", "digits", "mnist", "unsw")
METHODS = ("grid", "random", "halving")
OBJECTIVES = ("lut", "latency", "energy")


def fail(field: str, problem: str, source: str = "spec") -> ConfigError:
    """The one error shape of this module: ``SPEC: field NAME: problem``."""
    return ConfigError(f"{source}: field {field}: {problem}")


def fps_label(fps: float | str) -> str:
    """'100,000/s' or 'max' (a target as the store keeps it: a number or its text)."""
    return "max" if fps == "max" else f"{float(fps):,.0f}/s"


def _key(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrialConfig:
    """One trained model: data, precision, topology and training recipe (nothing hardware)."""

    dataset: str  # can | digits | mnist | unsw | npz
    data: str | None  # a user file or folder (absolute), or None
    data_id: str  # fingerprint of ``data`` (content hash for a file, names/sizes/mtimes for a folder)
    can_duration: float
    can_stride: int
    weights: str
    acts: int
    input_bits: int
    hidden: tuple[int, ...]
    epochs: int
    float_epochs: int | None
    batch_size: int
    lr: float
    patience: int
    seed: int

    @property
    def key(self) -> str:
        """16 hex digits of sha256 over the canonical JSON of every field except the data path
        (the fingerprint stands for the data, so a moved file keeps its results)."""
        data = asdict(self)
        del data["data"]
        return _key(data)

    @property
    def precision(self) -> str:
        return f"{self.weights} a{self.acts} i{self.input_bits}"

    @property
    def topology(self) -> str:
        return "-".join(map(str, self.hidden))

    @property
    def label(self) -> str:
        return f"{self.precision} {self.topology}"

    def with_epochs(self, epochs: int) -> "TrialConfig":
        return replace(self, epochs=epochs)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrialConfig":
        return cls(**{**data, "hidden": tuple(data["hidden"])})


@dataclass(frozen=True)
class Target:
    """Where and how fast a trained model is built: board, inferences/s (or 'max'), clock."""

    board: str
    fps: float | str
    clock_mhz: float | None = None

    @property
    def label(self) -> str:
        return f"{self.board} {fps_label(self.fps)}" + (f" @{self.clock_mhz:g}MHz" if self.clock_mhz else "")

    def key(self, trial_key: str) -> str:
        return _key({"trial": trial_key, **asdict(self)})


@dataclass(frozen=True)
class Search:
    method: str = "grid"
    samples: int = 0  # random/halving: configurations drawn from the grid; 0 = the whole grid
    seed: int = 0
    eta: int = 3
    rungs: int = 3


@dataclass(frozen=True)
class FrontOptions:
    synth: bool = True
    rtl: bool = True
    samples: int = 200
    max_designs: int = 8  # per board
    synth_timeout_s: float = 1800.0


@dataclass(frozen=True)
class BestRule:
    min_accuracy: float | None = None
    minimize: str = "lut"


@dataclass(frozen=True)
class TrialResources:
    trial_cpus: float = 1.0
    trial_memory_gb: float = 2.0
    front_memory_gb: float = 4.0


@dataclass(frozen=True)
class ExploreSpec:
    source: str
    base: TrialConfig  # dataset and training fields; weights/acts/input_bits/hidden from the first point
    weights: tuple[str, ...]
    acts: tuple[int, ...]
    input_bits: tuple[int, ...]
    hidden: tuple[tuple[int, ...], ...]
    search: Search
    targets: tuple[Target, ...]
    verify_samples: int
    front: FrontOptions
    best: BestRule
    resources: TrialResources

    def grid(self) -> tuple[TrialConfig, ...]:
        """Every point of the space, in the order weights x acts x input bits x hidden."""
        return tuple(replace(self.base, weights=w, acts=a, input_bits=i, hidden=h)
                     for w in self.weights for a in self.acts for i in self.input_bits for h in self.hidden)

    def trials(self) -> tuple[TrialConfig, ...]:
        """The configurations to run: the grid, or ``search.samples`` of it drawn with ``search.seed``."""
        grid = self.grid()
        if self.search.method == "grid" or not 0 < self.search.samples < len(grid):
            return grid
        pick = np.random.default_rng(self.search.seed).choice(len(grid), size=self.search.samples, replace=False)
        return tuple(grid[i] for i in sorted(pick))

    def rung_epochs(self) -> tuple[int, ...]:
        """Successive halving: the epochs of each rung, ending at ``train.epochs``; () otherwise."""
        if self.search.method != "halving":
            return ()
        eta, rungs, full = self.search.eta, self.search.rungs, self.base.epochs
        return tuple(max(1, round(full / eta ** (rungs - 1 - r))) for r in range(rungs))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["base"] = self.base.to_json()
        return data


# --- reading and checking ----------------------------------------------------------------------

class _Fields:
    """One mapping of the spec: typed access with defaults; ``done()`` rejects unknown fields."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise fail(where or "spec", f"expected a mapping of fields, got {type(data).__name__}", source)
        self.data, self.where, self.source, self.used = data, where, source, set()

    def name(self, field: str) -> str:
        return f"{self.where}.{field}" if self.where else field

    def get(self, field: str, default: Any, check: Callable[[str, Any], Any]) -> Any:
        self.used.add(field)
        if field not in self.data or self.data[field] is None:
            return default
        return check(self.name(field), self.data[field])

    def section(self, field: str) -> "_Fields":
        self.used.add(field)
        return _Fields(self.data.get(field), self.name(field), self.source)

    def done(self) -> None:
        unknown = sorted(str(k) for k in self.data if k not in self.used)
        if unknown:
            raise fail(self.name(unknown[0]), f"unknown field (known here: {', '.join(sorted(self.used))})",
                       self.source)


def _checkers(source: str):
    """Field checkers bound to the spec's file name for their messages."""

    def integer(low: int, high: int | None = None) -> Callable[[str, Any], int]:
        def check(name: str, value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
                span = f">= {low}" if high is None else f"{low}..{high}"
                raise fail(name, f"{value!r} is not an integer {span}", source)
            return value
        return check

    def number(low: float, *, above: bool = False) -> Callable[[str, Any], float]:
        def check(name: str, value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low or (above and value == low):
                raise fail(name, f"{value!r} is not a number {'>' if above else '>='} {low:g}", source)
            return float(value)
        return check

    def choice(options: tuple) -> Callable[[str, Any], Any]:
        def check(name: str, value: Any) -> Any:
            if not any(value == o and type(value) is type(o) for o in options):
                raise fail(name, f"{value!r} is not one of {', '.join(map(str, options))}", source)
            return value
        return check

    def text(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise fail(name, f"{value!r} is not a name or path", source)
        return value

    def boolean(name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise fail(name, f"{value!r} is not true or false", source)
        return value

    def listof(item: Callable[[str, Any], Any]) -> Callable[[str, Any], tuple]:
        def check(name: str, value: Any) -> tuple:
            values = value if isinstance(value, list) else [value]
            if not values:
                raise fail(name, "is an empty list; give at least one value", source)
            out = tuple(item(f"{name}[{i}]", v) for i, v in enumerate(values))
            if len(set(out)) != len(out):
                raise fail(name, f"lists a value twice ({list(values)})", source)
            return out
        return check

    def widths(name: str, value: Any) -> tuple[int, ...]:
        if isinstance(value, str):
            value = [w.strip() for w in value.split(",")]
            value = [int(w) if w.isdigit() else w for w in value]
        if not isinstance(value, list) or not value:
            raise fail(name, f"{value!r} is not a list of hidden layer widths like [256, 128, 64, 32]", source)
        return tuple(integer(1, 65536)(f"{name}[{i}]", w) for i, w in enumerate(value))

    def fps(name: str, value: Any) -> float | str:
        if value == "max":
            return "max"
        if isinstance(value, str):  # YAML 1.1 reads 1e6 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise fail(name, f"{value!r} is not a number > 0 or 'max'", source) from None
        return number(0.0, above=True)(name, value)

    return integer, number, choice, boolean, text, listof, widths, fps


def _fingerprint(path: Path) -> str:
    """Content hash of a file; for a folder, a hash of its files' names, sizes and mtimes."""
    digest = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = item.stat()
            digest.update(f"{item.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _dataset(top: _Fields, base_dir: Path, source: str, text: Callable[[str, Any], str]) -> tuple[str, str | None, str]:
    """(dataset name, absolute data path or None, data fingerprint)."""
    name = top.get("dataset", None, text)
    if name is None:
        raise fail("dataset", f"missing; give one of {', '.join(BUILTIN_DATASETS)} or a path to your .npz", source)
    data = top.get("data", None, text)
    if name.endswith(".npz"):
        if data is not None:
            raise fail("data", "not used when dataset is a .npz file; drop it", source)
        name, data = "npz", name
    elif name not in BUILTIN_DATASETS:
        raise fail("dataset", f"{name!r} is neither one of {', '.join(BUILTIN_DATASETS)} nor a path ending in .npz",
                   source)
    if data is None:
        if name == "unsw":
            raise fail("data", "dataset unsw needs data: PATH to unsw_nb15_binarized.npz", source)
        return name, None, ""
    if name in ("digits", "mnist"):
        raise fail("data", f"not used with dataset {name} (it is bundled); drop it", source)
    path = (base_dir / data).resolve()
    if not path.exists():
        raise fail("dataset" if name == "npz" else "data", f"{path} does not exist (relative paths start at the "
                   "spec's folder)", source)
    return name, str(path), _fingerprint(path)


def parse_spec(doc: Any, *, source: str = "spec", base_dir: Path = Path(".")) -> ExploreSpec:
    """Check a parsed YAML/TOML document and build the spec; ConfigError names the first bad field."""
    integer, number, choice, boolean, text, listof, widths, fps = _checkers(source)
    top = _Fields(doc, "", source)
    dataset, data, data_id = _dataset(top, base_dir, source, text)
    can_duration = top.get("can_duration", 60.0, number(1.0, above=True))
    can_stride = top.get("can_stride", 1, integer(1))

    space = top.section("space")
    weights = space.get("weights", ("ternary", "int2"), listof(choice(WEIGHT_RECIPES)))
    acts = space.get("acts", (2,), listof(choice(ACT_BITS)))
    input_bits = space.get("input_bits", (8,), listof(integer(1, 8)))
    hidden = space.get("hidden", ((256, 128, 64, 32),), lambda n, v: listof(widths)(
        n, v if isinstance(v, list) and any(isinstance(h, (list, str)) for h in v) else [v]))
    space.done()

    train = top.section("train")
    epochs = train.get("epochs", 20, integer(1))
    base = TrialConfig(
        dataset=dataset, data=data, data_id=data_id, can_duration=can_duration, can_stride=can_stride,
        weights=weights[0], acts=acts[0], input_bits=input_bits[0], hidden=hidden[0], epochs=epochs,
        float_epochs=train.get("float_epochs", None, integer(0)), batch_size=train.get("batch_size", 256, integer(2)),
        lr=train.get("lr", 5e-3, number(0.0, above=True)), patience=train.get("patience", 10, integer(1)),
        seed=train.get("seed", 0, integer(0)))
    train.done()

    sec = top.section("search")
    search = Search(method=sec.get("method", "grid", choice(METHODS)), samples=sec.get("samples", 0, integer(0)),
                    seed=sec.get("seed", 0, integer(0)), eta=sec.get("eta", 3, integer(2)),
                    rungs=sec.get("rungs", 3, integer(1, 8)))
    sec.done()
    if search.method == "random" and search.samples == 0:
        raise fail("search.samples", "method random needs samples: N (how many configurations to draw)", source)

    hw = top.section("hardware")
    boards = hw.get("boards", ("zcu104",), listof(text))
    rates = hw.get("target_fps", (100000.0,), listof(fps))
    clock = hw.get("clock_mhz", None, number(0.0, above=True))
    hw.done()
    from ..boards import get_board
    for i, board in enumerate(boards):
        try:
            get_board(board)
        except ConfigError as error:
            raise fail(f"hardware.boards[{i}]", f"not usable: {error}", source) from None
    targets = tuple(Target(b, r, clock) for b in boards for r in rates)

    verify = top.section("verify")
    verify_samples = verify.get("samples", 1000, integer(1))
    verify.done()

    fr = top.section("front")
    front = FrontOptions(synth=fr.get("synth", True, boolean), rtl=fr.get("rtl", True, boolean),
                         samples=fr.get("samples", 200, integer(1)), max_designs=fr.get("max_designs", 8, integer(0)),
                         synth_timeout_s=fr.get("synth_timeout_s", 1800.0, number(0.0, above=True)))
    fr.done()

    be = top.section("best")
    best = BestRule(min_accuracy=be.get("min_accuracy", None, number(0.0)), minimize=be.get("minimize", "lut",
                                                                                             choice(OBJECTIVES)))
    be.done()
    if best.min_accuracy is not None and best.min_accuracy > 1:
        raise fail("best.min_accuracy", f"{best.min_accuracy:g} is a fraction: write 0.99 for 99%", source)

    res = top.section("resources")
    resources = TrialResources(trial_cpus=res.get("trial_cpus", 1.0, number(0.0, above=True)),
                               trial_memory_gb=res.get("trial_memory_gb", 2.0, number(0.0, above=True)),
                               front_memory_gb=res.get("front_memory_gb", 4.0, number(0.0, above=True)))
    res.done()
    top.done()
    return ExploreSpec(source=source, base=base, weights=weights, acts=acts, input_bits=input_bits, hidden=hidden,
                       search=search, targets=targets, verify_samples=verify_samples, front=front, best=best,
                       resources=resources)


def read_spec(path: str | Path) -> ExploreSpec:
    """Read SPEC.yaml / SPEC.yml / SPEC.toml (by suffix) and check it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such spec file; see examples/explore_can.yaml")
    text = path.read_text(errors="replace")
    try:
        if path.suffix == ".toml":
            doc = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml
            doc = yaml.safe_load(text)
        else:
            raise ConfigError(f"{path}: unknown spec format {path.suffix!r}; name it .yaml, .yml or .toml")
    except ConfigError:
        raise
    except Exception as error:  # yaml.YAMLError / tomllib.TOMLDecodeError: say where, in one line
        first = " ".join(str(error).split())
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()} ({first[:200]})") from None
    return parse_spec(doc, source=str(path), base_dir=path.parent)
