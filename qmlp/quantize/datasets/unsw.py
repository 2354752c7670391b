"""UNSW-NB15 in its binarized form (``unsw_nb15_binarized.npz``: arrays ``train`` and ``test``,
593 {0,1} feature columns plus a last label column, 0 = normal / 1 = attack), read from a user-given path.
Nothing is downloaded; the file must already be on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError
from .base import Dataset, open_npz

__all__ = ["load_unsw_dataset", "UNSW_FEATURES"]

UNSW_FEATURES = 600  # the 593 binary features zero-padded to 600, as in FINN's cybersecurity MLP


def _part(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if key not in archive.files:
        raise ConfigError(f"{path}: no array {key!r} (found {', '.join(archive.files) or 'none'}); "
                          "expected the binarized UNSW-NB15 .npz with arrays 'train' and 'test'")
    data = np.asarray(archive[key], dtype=np.float32)
    if data.ndim != 2 or data.shape[1] < 2 or data.shape[1] - 1 > UNSW_FEATURES:
        raise ConfigError(f"{path}: array {key!r} has shape {data.shape}; expected (rows, features + 1 label column)")
    x, y = data[:, :-1], data[:, -1]
    if not np.all((x == 0) | (x == 1)) or not np.all((y == 0) | (y == 1)):
        raise ConfigError(f"{path}: array {key!r} is not binarized (values other than 0/1)")
    x = np.pad(x, ((0, 0), (0, UNSW_FEATURES - x.shape[1])))
    return x, y.astype(np.int64)


def load_unsw_dataset(path: str | Path | None) -> Dataset:
    """Train/test as stored in the file (the split of the published binarized set)."""
    if path is None:
        raise ConfigError("--dataset unsw needs --data PATH to unsw_nb15_binarized.npz (it is not bundled or downloaded)")
    path = Path(path)
    with open_npz(path, hint="give the path to unsw_nb15_binarized.npz", arrays="'train' and 'test'") as archive:
        x_train, y_train = _part(archive, "train", path)
        x_test, y_test = _part(archive, "test", path)
    return Dataset("unsw", x_train, y_train, x_test, y_test, ("normal", "attack"), input_signed=False, input_max=1.0,
                   description=f"UNSW-NB15 flow record, binarized to {UNSW_FEATURES} {{0,1}} features (zero-padded)")
