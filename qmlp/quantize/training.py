"""The training loop: Adam, cosine learning-rate schedule, early stopping on a held-out part of
the training set (the test set is never looked at while training), tqdm progress bar."""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["TrainConfig", "EpochStats", "History", "train_model", "predict", "accuracy", "confusion_matrix",
           "set_threads", "min_samples", "check_samples"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 256
    lr: float = 5e-3
    weight_decay: float = 0.0
    seed: int = 0
    patience: int = 10  # epochs without a better validation accuracy before stopping
    val_fraction: float = 0.1
    progress: bool = True


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    loss: float
    train_acc: float
    val_acc: float
    lr: float


@dataclass(frozen=True)
class History:
    epochs: tuple[EpochStats, ...]
    best_epoch: int
    stopped_early: bool
    seconds: float = field(default=0.0)


def set_threads(n: int) -> None:
    """CPU cores are shared on the build machines: keep torch to a few threads."""
    torch.set_num_threads(max(1, n))


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Raw model outputs (logits) in eval mode, float32 (n, classes)."""
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            outs.append(model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size]))).float().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(model, x).argmax(axis=1) == y).mean()) if len(y) else 0.0


def confusion_matrix(y: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    out = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(out, (y, pred), 1)
    return out


def _held_out(n: int, val_fraction: float) -> int:
    """Rows of ``n`` held out for early stopping (at least one)."""
    return max(1, int(n * val_fraction))


def min_samples(val_fraction: float = TrainConfig.val_fraction) -> int:
    """The fewest training rows ``train_model`` can learn from: the held-out rows plus one
    BatchNorm batch of two (a batch of one is skipped)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction {val_fraction}: must be in [0, 1)")
    n = 3
    while n - _held_out(n, val_fraction) < 2:
        n += 1
    return n


def check_samples(n: int, what: str, val_fraction: float = TrainConfig.val_fraction) -> None:
    """ConfigError naming ``what`` and the minimum unless ``n`` training rows are enough."""
    need = min_samples(val_fraction)
    if n < need:
        raise ConfigError(f"{what}: {n} training sample(s); training needs at least {need} "
                          f"({_held_out(need, val_fraction)} held out for early stopping, 2 for a BatchNorm batch)")


def train_model(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, desc: str = "train") -> History:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch.

    Expects float32 ``x`` (n, features) and int64 labels ``y``. A seeded ``val_fraction`` of the
    rows is held out for early stopping: training ends after ``patience`` epochs without a better
    validation accuracy. The learning rate follows a cosine from ``lr`` to 0 over ``epochs``.
    Fewer than ``min_samples(cfg.val_fraction)`` rows: ConfigError (nothing could be learnt)."""
    from tqdm import tqdm

    check_samples(len(y), desc, cfg.val_fraction)
    start = time.monotonic()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(y))
    n_val = _held_out(len(y), cfg.val_fraction)
    val, fit = order[:n_val], order[n_val:]
    xt, yt = torch.from_numpy(np.ascontiguousarray(x[fit])), torch.from_numpy(y[fit])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    loss_fn = nn.CrossEntropyLoss()
    stats: list[EpochStats] = []
    best_acc, best_epoch, best_state = -1.0, 0, copy.deepcopy(model.state_dict())
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, unit="epoch", file=sys.stderr, disable=not cfg.progress,
               dynamic_ncols=True, leave=True)
    stopped = False
    for epoch in bar:
        model.train()
        perm = torch.from_numpy(rng.permutation(len(fit)))
        total_loss, correct = 0.0, 0
        for i in range(0, len(fit), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm cannot train on a batch of one
                continue
            xb, yb = xt[idx], yt[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(idx)
            correct += int((out.argmax(dim=1) == yb).sum())
        lr = opt.param_groups[0]["lr"]
        sched.step()
        val_acc = accuracy(model, x[val], y[val])
        stats.append(EpochStats(epoch, total_loss / len(fit), correct / len(fit), val_acc, lr))
        bar.set_postfix(loss=f"{total_loss / len(fit):.4f}", val=f"{val_acc:.4f}")
        if val_acc > best_acc:
            best_acc, best_epoch, best_state = val_acc, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= cfg.patience:
            stopped = True
            break
    bar.close()
    model.load_state_dict(best_state)
    return History(tuple(stats), best_epoch, stopped, time.monotonic() - start)
