"""Training loop contract: seed, cosine schedule, early stopping with best-state restore, warm start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qmlp.quantize.model import ModelSpec, build_float_mlp, build_mlp, load_float_weights
from qmlp.quantize.training import TrainConfig, accuracy, confusion_matrix, train_model


def _blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], np.float32)
    return (centres[y] + rng.normal(0, 0.5, (n, 4))).astype(np.float32), y.astype(np.int64)


def test_learns_and_is_reproducible():
    x, y = _blobs()
    spec = ModelSpec(4, (16,), 3, input_signed=True, input_max=4.0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_float_mlp(spec)
        hist = train_model(model, x, y, TrainConfig(epochs=4, batch_size=32, lr=1e-2, progress=False))
        runs.append((hist, accuracy(model, x, y)))
    assert runs[0][1] > 0.9
    assert [s.loss for s in runs[0][0].epochs] == [s.loss for s in runs[1][0].epochs]
    lrs = [s.lr for s in runs[0][0].epochs]
    assert lrs[0] == pytest.approx(1e-2) and all(a > b for a, b in zip(lrs, lrs[1:]))  # cosine decay


def test_early_stopping_restores_best_epoch():
    x, y = _blobs()
    torch.manual_seed(0)
    model = build_float_mlp(ModelSpec(4, (8,), 3, input_signed=True, input_max=4.0))
    # lr = 0 and frozen BatchNorm statistics: the model never changes, validation accuracy never
    # beats epoch 1, so training stops `patience` epochs later
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.momentum = 0.0
    hist = train_model(model, x, y, TrainConfig(epochs=20, lr=0.0, patience=3, progress=False))
    assert hist.stopped_early and hist.best_epoch == 1 and len(hist.epochs) == 4


def test_confusion_matrix():
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    assert confusion_matrix(y, pred, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_warm_start_copies_weights_and_batchnorm():
    spec = ModelSpec(6, (5, 4), 3, weights="int2")
    torch.manual_seed(1)
    float_model = build_float_mlp(spec)
    float_model.blocks[0][1].running_mean.fill_(0.25)
    quant = build_mlp(spec)
    load_float_weights(quant, float_model)
    assert torch.equal(quant.blocks[0][0].weight, float_model.blocks[0][0].weight)
    assert torch.equal(quant.head.bias, float_model.head.bias)
    assert torch.all(quant.blocks[0][1].running_mean == 0.25)
