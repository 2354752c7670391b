"""digits, MNIST-5k and UNSW-NB15 loaders: shapes, ranges, splits, errors."""

from __future__ import annotations

import numpy as np
import pytest

from qmlp.errors import ConfigError
from qmlp.quantize.datasets import load_dataset, stratified_split
from qmlp.quantize.datasets.unsw import UNSW_FEATURES, load_unsw_dataset


def test_digits():
    data = load_dataset("digits", seed=1)
    assert data.x_train.shape[1] == 64 and data.classes == 10
    assert len(data.y_train) + len(data.y_test) == 1797
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1 and not data.input_signed
    assert np.all(data.x_train * 16 == np.round(data.x_train * 16))  # exact on the 8-bit input grid? 16 levels


def test_mnist_5k():
    data = load_dataset("mnist", seed=0)
    assert data.features == 784 and len(data.y_train) + len(data.y_test) == 5000
    assert data.x_test.dtype == np.float32 and data.x_test.max() <= 1.0
    assert np.bincount(data.y_test, minlength=10).min() > 0


def test_stratified_split_is_disjoint_and_balanced():
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    train, test = stratified_split(y, 0.2, seed=3)
    assert not set(train) & set(test) and len(train) + len(test) == len(y)
    assert np.bincount(y[test]).tolist() == [20, 10, 6, 4]


def test_centred_for_one_bit_input():
    data = load_dataset("digits").centred()
    assert data.input_signed and data.x_train.min() == -0.5 and data.x_train.max() == 0.5


def _write_unsw(path, cols=594, rows=40, binary=True):
    rng = np.random.default_rng(0)
    part = rng.integers(0, 2, (rows, cols)).astype(np.float32)
    if not binary:
        part[0, 0] = 0.5
    np.savez(path, train=part, test=part[:10])


def test_unsw_from_file(tmp_path):
    path = tmp_path / "unsw_nb15_binarized.npz"
    _write_unsw(path)
    data = load_unsw_dataset(path)
    assert data.x_train.shape == (40, UNSW_FEATURES) and data.x_test.shape == (10, UNSW_FEATURES)
    assert np.all(data.x_train[:, 593:] == 0) and data.class_names == ("normal", "attack")


@pytest.mark.parametrize("setup, fragment", [
    (lambda p: None, "file not found"),
    (lambda p: p.write_text("not a zip"), "not a readable .npz"),
    (lambda p: np.savez(p, train=np.zeros((3, 5))), "no array 'test'"),
    (lambda p: _write_unsw(p, binary=False), "not binarized"),
])
def test_unsw_errors(tmp_path, setup, fragment):
    path = tmp_path / "unsw.npz"
    setup(path)
    with pytest.raises(ConfigError, match=fragment):
        load_unsw_dataset(path)


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("cifar")
