"""A user's own data set as one ``.npz`` file: arrays ``x_train`` (n, features) and ``x_test``
(m, features) of finite numbers, ``y_train`` / ``y_test`` integer class indices 0..C-1, and
optionally ``class_names`` (C strings). Read with ``allow_pickle=False``; every array is
checked where it enters, with a one-line error naming the file and the array."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError
from .base import Dataset, open_npz

__all__ = ["load_npz_dataset", "NPZ_ARRAYS"]

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _features(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    x = archive[key]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1 or not np.issubdtype(x.dtype, np.number):
        raise ConfigError(f"{path}: array {key!r} has shape {x.shape} and dtype {x.dtype}; "
                          "expected numbers shaped (samples, features)")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{path}: array {key!r} holds NaN or infinite values; clean the data first")
    return x


def _labels(archive: np.lib.npyio.NpzFile, key: str, rows: int, path: Path) -> np.ndarray:
    y = archive[key]
    if y.shape != (rows,) or not np.issubdtype(y.dtype, np.integer) or (rows and y.min() < 0):
        raise ConfigError(f"{path}: array {key!r} has shape {y.shape} and dtype {y.dtype}; "
                          f"expected {rows} non-negative integer class indices")
    return y.astype(np.int64)


def load_npz_dataset(path: str | Path | None) -> Dataset:
    """The user's train/test split as stored; classes = 1 + the largest label (at least 2)."""
    if path is None:
        raise ConfigError("--dataset npz needs --data FILE.npz with arrays x_train, y_train, x_test, y_test")
    path = Path(path)
    with open_npz(path, hint="give the path of your .npz data set", arrays=", ".join(NPZ_ARRAYS)) as archive:
        missing = [key for key in NPZ_ARRAYS if key not in archive.files]
        if missing:
            raise ConfigError(f"{path}: no array {missing[0]!r} (found {', '.join(archive.files) or 'none'}); "
                              f"expected arrays {', '.join(NPZ_ARRAYS)}")
        x_train, x_test = _features(archive, "x_train", path), _features(archive, "x_test", path)
        if x_train.shape[1] != x_test.shape[1]:
            raise ConfigError(f"{path}: x_train has {x_train.shape[1]} features but x_test {x_test.shape[1]}")
        y_train = _labels(archive, "y_train", len(x_train), path)
        y_test = _labels(archive, "y_test", len(x_test), path)
        classes = max(2, int(max(y_train.max(), y_test.max())) + 1)
        names = tuple(str(n) for n in archive["class_names"]) if "class_names" in archive.files else \
            tuple(str(c) for c in range(classes))
    if len(names) != classes:
        raise ConfigError(f"{path}: class_names lists {len(names)} names but the labels need {classes}")
    low = min(float(x_train.min()), float(x_test.min()))
    high = max(float(np.abs(x_train).max()), float(np.abs(x_test).max()))
    return Dataset(path.stem, x_train, y_train, x_test, y_test, names, input_signed=low < 0,
                   input_max=high if high > 0 else 1.0,
                   description=f"{x_train.shape[1]} features from {path.name}")
