"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, values 0..16), nothing downloaded."""

from __future__ import annotations

import numpy as np

from .base import Dataset, stratified_split

__all__ = ["load_digits_dataset"]


def load_digits_dataset(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """64 features scaled to [0, 1] (pixel / 16), 10 classes, stratified 80/20 split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    train, test = stratified_split(y, test_fraction, seed)
    return Dataset("digits", x[train], y[train], x[test], y[test], tuple(str(d) for d in range(10)),
                   input_signed=False, input_max=1.0,
                   description="8x8 grey image, 64 pixels row-major, value = intensity/16 in [0,1]")
