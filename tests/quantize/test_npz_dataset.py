"""The user's own .npz data set (``--dataset npz --data FILE``): read as stored, checked where it enters."""

from __future__ import annotations

import numpy as np
import pytest

from qmlp.errors import ConfigError
from qmlp.quantize.datasets import load_dataset


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def _good(rng):
    return dict(x_train=rng.normal(size=(30, 5)), y_train=rng.integers(0, 3, 30),
                x_test=rng.normal(size=(10, 5)), y_test=rng.integers(0, 3, 10))


def test_reads_split_classes_and_range(tmp_path):
    rng = np.random.default_rng(0)
    arrays = _good(rng)
    data = load_dataset("npz", _write(tmp_path / "mine.npz", **arrays, class_names=np.array(["a", "b", "c"])))
    assert data.name == "mine" and data.class_names == ("a", "b", "c") and data.features == 5
    assert np.array_equal(data.x_train, arrays["x_train"].astype(np.float32))
    assert np.array_equal(data.y_test, arrays["y_test"])
    assert data.input_signed
    assert data.input_max == pytest.approx(max(np.abs(arrays["x_train"]).max(), np.abs(arrays["x_test"]).max()))


@pytest.mark.parametrize("change, message", [
    ({"x_test": None}, "no array 'x_test'"),
    ({"x_train": np.zeros(30)}, "array 'x_train' has shape (30,)"),
    ({"x_test": np.full((10, 5), np.nan)}, "array 'x_test' holds NaN"),
    ({"y_train": np.full(30, 0.5)}, "array 'y_train' has shape (30,) and dtype float64"),
    ({"y_test": np.full(10, -1)}, "array 'y_test' has shape (10,)"),
    ({"x_test": np.zeros((10, 4))}, "x_train has 5 features but x_test 4"),
    ({"class_names": np.array(["a"])}, "class_names lists 1 names but the labels need 3"),
])
def test_bad_arrays_are_one_line_errors(tmp_path, change, message):
    arrays = _good(np.random.default_rng(1))
    arrays["y_train"][0] = 2
    arrays.update(change)
    path = _write(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(ConfigError, match=None) as info:
        load_dataset("npz", path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="needs --data FILE.npz"):
        load_dataset("npz", None)
    with pytest.raises(ConfigError, match="file not found"):
        load_dataset("npz", tmp_path / "nope.npz")
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(ConfigError, match="not a readable .npz file"):
        load_dataset("npz", tmp_path / "text.npz")
