"""``qmlp compile --config build.json|build.toml``: every compile option as a key, with FINN's
names where FINN has one (``output_dir``, ``target_fps``, ``synth_clk_period_ns``,
``folding_config_file``, ``stop_step``, ``board``), validated with one-line errors.

Relative paths in the file resolve against the file's own folder, so a config works from any
current directory. Command-line options given next to ``--config`` win over the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

__all__ = ["KEYS", "ALIASES", "read_config"]

BACKENDS = ("native", "finn")


def _path(base: Path) -> Callable[[Any, str], Path]:
    def convert(value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ValueError("must be a path string")
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path
    return convert


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError("must be a positive number")
    return float(value)


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _text(choices: tuple[str, ...] | None = None) -> Callable[[Any, str], str]:
    def convert(value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError("must be a string")
        if choices is not None and value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value
    return convert


def _rate(value: Any, key: str) -> float | str:
    from .api import parse_rate

    try:
        return parse_rate(value)
    except ConfigError as error:
        raise ValueError(str(error).split(": ", 1)[-1]) from None


def _keys(base: Path) -> dict[str, Callable[[Any, str], Any]]:
    """Config key (the CLI option's name) -> converter."""
    return {
        "model": _path(base), "board": _text(), "out": _path(base), "clock_mhz": _number, "target_fps": _rate,
        "folding": _path(base), "argmax": _flag, "synth": _flag, "backend": _text(BACKENDS), "stop_after": _text(),
    }


KEYS = tuple(_keys(Path(".")))
# FINN's DataflowBuildConfig names -> ours (synth_clk_period_ns is converted to clock_mhz)
ALIASES = {"output_dir": "out", "folding_config_file": "folding", "stop_step": "stop_after"}


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read it ({error.strerror or error})") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as error:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise ConfigError(f"--config {path}: not valid {kind} ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: the top level must be a table of options")
    return data


def read_config(path: str | Path) -> dict[str, Any]:
    """The options in ``path`` under the CLI's names (``model``, ``board``, ``out``,
    ``clock_mhz``, ``target_fps``, ``folding``, ``argmax``, ``synth``, ``backend``,
    ``stop_after``), converted and checked; ConfigError naming the file and key otherwise."""
    path = Path(path)
    data = _load(path)
    keys = _keys(path.parent)
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        if raw_key == "synth_clk_period_ns":
            key, value = "clock_mhz", (1000.0 / value if isinstance(value, (int, float)) and not isinstance(value, bool)
                                       and value > 0 else value)
        else:
            key = ALIASES.get(raw_key, raw_key)
        if key not in keys:
            known = ", ".join(sorted(set(keys) | set(ALIASES) | {"synth_clk_period_ns"}))
            raise ConfigError(f"--config {path}: unknown key {raw_key!r}; known keys: {known}")
        if key in out:
            raise ConfigError(f"--config {path}: key {raw_key!r} given twice (directly and through a FINN name)")
        try:
            out[key] = keys[key](value, raw_key)
        except ValueError as error:
            raise ConfigError(f"--config {path}: key {raw_key!r} {error} (got {value!r})") from None
    if "target_fps" in out and "folding" in out:
        raise ConfigError(f"--config {path}: target_fps and folding_config_file both given; choose one")
    return out
