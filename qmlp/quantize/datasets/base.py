"""The dataset value every loader returns: float32 features already split into train and test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigError

__all__ = ["Dataset", "stratified_split", "open_npz"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """``x_*`` float32 (n, features); ``y_*`` int64 class indices. ``input_signed``/``input_max``
    describe the feature range (they set the model's constant input scale); ``description`` is
    the human-readable input format written into the ONNX metadata."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    input_signed: bool
    input_max: float
    description: str

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def centred(self) -> "Dataset":
        """Features shifted so the midpoint of their range is 0 (for a 1-bit sign input quantizer)."""
        if self.input_signed:
            return self
        mid = np.float32(self.input_max / 2)
        return Dataset(self.name, self.x_train - mid, self.y_train, self.x_test - mid, self.y_test, self.class_names,
                       True, self.input_max / 2, self.description + f"; shifted by -{float(mid):g} for a 1-bit sign input")


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, test), the same class proportions in both, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        cut = int(round(len(idx) * test_fraction))
        test.append(idx[:cut])
        train.append(idx[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def open_npz(path: Path, *, hint: str, arrays: str) -> np.lib.npyio.NpzFile:
    """The user's ``--data`` archive, opened without pickle; ConfigError naming the file otherwise.
    ``hint`` says which file to give, ``arrays`` which arrays it should hold."""
    if not path.is_file():
        raise ConfigError(f"--data {path}: file not found; {hint}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ConfigError(f"--data {path}: not a readable .npz file ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(f"--data {path}: expected an .npz archive with arrays {arrays}")
    return archive
