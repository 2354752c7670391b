"""Offline datasets for ``qmlp train``: nothing here downloads anything."""

from __future__ import annotations

from pathlib import Path

from ...errors import ConfigError
from .base import Dataset, stratified_split

__all__ = ["Dataset", "DATASETS", "load_dataset", "stratified_split"]

DATASETS = ("can", "digits", "mnist", "unsw", "npz")


def load_dataset(name: str, data: str | Path | None = None, *, seed: int = 0, can_duration: float = 60.0,
                 can_stride: int = 1) -> Dataset:
    """Load ``name``; ``data`` is a user file/directory (can: HCRL CSVs, unsw: the .npz, npz: the
    user's own data set, see ``datasets/npz.py``)."""
    if name == "can":
        from .can import load_can_dataset
        return load_can_dataset(data, seed=seed, duration=can_duration, stride=can_stride)
    if data is not None and name in ("digits", "mnist"):
        raise ConfigError(f"--data is not used with --dataset {name} (it is bundled); drop --data")
    if name == "digits":
        from .digits import load_digits_dataset
        return load_digits_dataset(seed)
    if name == "mnist":
        from .mnist import load_mnist_dataset
        return load_mnist_dataset(seed)
    if name == "unsw":
        from .unsw import load_unsw_dataset
        return load_unsw_dataset(data)
    if name == "npz":
        from .npz import load_npz_dataset
        return load_npz_dataset(data)
    raise ConfigError(f"--dataset {name!r}: unknown dataset (choose one of {', '.join(DATASETS)})")
