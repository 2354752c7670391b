"""Shared by simulate/verify/info: open MODEL.onnx or a compiled OUT directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..build import Build
from ..errors import ConfigError
from ..frontend import import_model
from ..ir import Dataflow
from ..untrusted import LIMITS, finite_floats

__all__ = ["open_dataflow", "load_inputs", "save_atomic"]


def open_dataflow(target: str | Path) -> tuple[Dataflow, Path | None]:
    """MODEL.onnx -> (lowered IR, None); OUT directory -> (its IR, OUT), through qmlp.build.Build."""
    target = Path(target)
    if target.is_dir():
        return Build.open(target, folded=False).dataflow, target
    return import_model(target), None


def load_inputs(path: str | Path, df: Dataflow) -> np.ndarray:
    """Float inputs shaped (batch, *input_shape) from a .npy file: shape, dtype and size checked
    before the data is read, NaN and infinities refused (the agent's rule: the input quantizer
    has no code for them)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--input {path}: is a directory; pass a .npy file")
    try:
        x = np.load(path, allow_pickle=False, mmap_mode="r")
    except FileNotFoundError:
        raise ConfigError(f"--input {path}: no such file") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"--input {path}: not a numpy .npy array ({error})") from None
    expected = tuple(df.input_shape)
    if not (x.ndim == len(expected) + 1 and x.shape[1:] == expected and x.shape[0] > 0):
        raise ConfigError(f"--input {path}: shape {x.shape} does not match the model input "
                          f"(batch, {', '.join(map(str, expected))}); add the batch axis")
    if not np.issubdtype(x.dtype, np.number):
        raise ConfigError(f"--input {path}: dtype {x.dtype} is not numeric")
    if x.size * 4 > LIMITS.input_bytes:
        raise ConfigError(f"--input {path}: {x.shape[0]:,} samples are more than the "
                          f"{LIMITS.input_bytes >> 30} GiB of float32 qmlp reads at once; split the file")
    return finite_floats(np.asarray(x), f"--input {path}")


def save_atomic(path: str | Path, array: np.ndarray | dict[str, np.ndarray], *, option: str = "--output") -> None:
    """Write a .npy (or, for a dict of arrays, an .npz) so that a failure never leaves a
    half-written file behind."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"{option} {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; name the file to write")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            if isinstance(array, dict):
                np.savez(handle, **array)
            else:
                np.save(handle, array)
        tmp.replace(path)
    except OSError as error:
        raise ConfigError(f"{option} {path}: cannot be written ({error.strerror or error})") from None
    finally:
        tmp.unlink(missing_ok=True)
