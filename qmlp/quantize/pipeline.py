"""``qmlp train`` end to end: data -> float baseline -> QAT warm-started from it -> export, report, plot.

Outputs land next to the model: ``<stem>.onnx``, ``<stem>.json`` (report), ``<stem>.png``
(training curves) and, when asked, ``<stem>.npz`` test vectors. Everything is written to temporary
names first and renamed at the end, so a failed run leaves nothing half-written."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ConfigError
from .datasets import Dataset, load_dataset
from .model import ModelSpec, build_float_mlp, build_mlp, load_float_weights
from .recipes import get_recipe
from .training import (History, TrainConfig, accuracy, check_samples, confusion_matrix, predict, set_threads,
                       train_model)

__all__ = ["TrainOptions", "TrainOutcome", "run_training", "training_data", "plot_history", "format_confusion"]


@dataclass(frozen=True)
class TrainOptions:
    dataset: str
    output: Path
    weights: str = "ternary"
    acts: int = 2
    input_bits: int = 8
    hidden: tuple[int, ...] = (256, 128, 64, 32)
    epochs: int = 20
    float_epochs: int | None = None  # default: same as epochs
    batch_size: int = 256
    lr: float = 5e-3
    patience: int = 10
    seed: int = 0
    data: Path | None = None
    can_duration: float = 60.0
    can_stride: int = 1
    threads: int = 1
    vectors: int = 0  # test vectors to write (0 = none)
    progress: bool = True
    command: str = ""


@dataclass(frozen=True)
class TrainOutcome:
    float_accuracy: float
    accuracy: float
    confusion: np.ndarray
    class_names: tuple[str, ...]
    files: tuple[Path, ...]
    report: dict


def format_confusion(matrix: np.ndarray, names: tuple[str, ...]) -> str:
    """Plain-text confusion matrix, rows = true class, columns = predicted."""
    width = max(8, max(len(n) for n in names) + 1, len(str(int(matrix.max(initial=0)))) + 1)
    lines = ["true \\ pred".ljust(12) + "".join(n.rjust(width) for n in names)]
    for name, row in zip(names, matrix):
        lines.append(name.ljust(12) + "".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)


def plot_history(float_hist: History, quant_hist: History, path: Path, title: str) -> None:
    """Loss and validation accuracy per epoch for both runs (matplotlib Agg, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for hist, label, color in ((float_hist, "float", "tab:blue"), (quant_hist, "quantized", "tab:orange")):
        ep = [s.epoch for s in hist.epochs]
        ax_loss.plot(ep, [s.loss for s in hist.epochs], marker="o", ms=3, color=color, label=label)
        ax_acc.plot(ep, [s.val_acc for s in hist.epochs], marker="o", ms=3, color=color, label=f"{label} (validation)")
        ax_acc.plot(ep, [s.train_acc for s in hist.epochs], ls="--", color=color, label=f"{label} (train)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _check(opts: TrainOptions) -> None:
    if opts.epochs < 1 or (opts.float_epochs is not None and opts.float_epochs < 0):
        raise ConfigError(f"--epochs {opts.epochs}: give at least 1 epoch")
    if opts.batch_size < 2:
        raise ConfigError(f"--batch-size {opts.batch_size}: must be >= 2 (BatchNorm)")
    if not opts.lr > 0:
        raise ConfigError(f"--lr {opts.lr}: must be positive")
    if opts.output.suffix != ".onnx":
        raise ConfigError(f"-o {opts.output}: the model file must end in .onnx")
    if not opts.output.parent.is_dir():
        raise ConfigError(f"-o {opts.output}: directory {opts.output.parent} does not exist; create it first")
    if opts.can_duration <= 1 or opts.can_stride < 1:
        raise ConfigError("--can-duration must be > 1 s and --can-stride >= 1")
    get_recipe(opts.weights)


@dataclass(frozen=True)
class _Trained:
    model: object  # the quantized torch model, eval mode
    float_accuracy: float
    accuracy: float
    confusion: np.ndarray
    float_history: History
    history: History


def _train_both(spec: ModelSpec, data: Dataset, opts: TrainOptions, log) -> _Trained:
    """Float baseline, then QAT warm-started from it; test accuracies and confusion matrix."""
    import torch

    torch.manual_seed(opts.seed)
    cfg = TrainConfig(epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, seed=opts.seed,
                      patience=opts.patience, progress=opts.progress)
    float_epochs = opts.epochs if opts.float_epochs is None else opts.float_epochs
    float_model = build_float_mlp(spec)
    float_hist = (train_model(float_model, data.x_train, data.y_train, replace(cfg, epochs=float_epochs),
                              desc="float baseline") if float_epochs > 0 else History((), 0, False))
    float_acc = accuracy(float_model, data.x_test, data.y_test)
    log(f"float baseline test accuracy: {float_acc:.4%}")

    model = build_mlp(spec)
    load_float_weights(model, float_model)
    quant_hist = train_model(model, data.x_train, data.y_train, cfg, desc=f"QAT {opts.weights}")
    pred = predict(model, data.x_test).argmax(axis=1)
    quant_acc = float((pred == data.y_test).mean())
    conf = confusion_matrix(data.y_test, pred, data.classes)
    log(f"quantized ({opts.weights}, A{opts.acts}) test accuracy: {quant_acc:.4%}")
    log(format_confusion(conf, data.class_names))
    return _Trained(model, float_acc, quant_acc, conf, float_hist, quant_hist)


def _metadata(data: Dataset, spec: ModelSpec, opts: TrainOptions, result: _Trained) -> dict[str, str]:
    """ONNX metadata_props: what the model is, how good it is, how it was made."""
    return {
        "qmlp.version": __version__,
        "qmlp.dataset": data.name,
        "qmlp.accuracy": f"{result.accuracy:.6f}",
        "qmlp.float_accuracy": f"{result.float_accuracy:.6f}",
        "qmlp.class_names": json.dumps(list(data.class_names)),
        "qmlp.input_description": data.description,
        "qmlp.weights": opts.weights,
        "qmlp.acts": str(opts.acts),
        "qmlp.input_bits": str(opts.input_bits),
        "qmlp.topology": "-".join(map(str, spec.widths)),
        "qmlp.command": opts.command,
    }


def _report(data: Dataset, spec: ModelSpec, opts: TrainOptions, result: _Trained) -> dict:
    return {
        "dataset": data.name, "samples": {"train": int(len(data.y_train)), "test": int(len(data.y_test))},
        "class_names": list(data.class_names), "topology": list(spec.widths), "weights": opts.weights,
        "recipe": get_recipe(opts.weights).description, "acts": opts.acts, "input_bits": opts.input_bits,
        "seed": opts.seed, "float_accuracy": result.float_accuracy, "accuracy": result.accuracy,
        "confusion": result.confusion.tolist(),
        "float_history": [asdict(s) for s in result.float_history.epochs],
        "history": [asdict(s) for s in result.history.epochs],
        "best_epoch": result.history.best_epoch, "stopped_early": result.history.stopped_early,
        "command": opts.command, "qmlp_version": __version__,
    }


def _write_outputs(opts: TrainOptions, data: Dataset, spec: ModelSpec, result: _Trained, started: float) -> dict:
    """Model, plot, optional test vectors and report, each written under a temporary name and
    renamed only when all of them exist; on any failure the temporary files are removed."""
    from .export import export_model, write_test_vectors

    stem = opts.output.with_suffix("")
    final = {"model": opts.output, "report": stem.with_suffix(".json"), "plot": stem.with_suffix(".png")}
    if opts.vectors:
        final["vectors"] = stem.with_suffix(".npz")
    tmp = {k: v.with_name(f".{v.name}.tmp{os.getpid()}{v.suffix}") for k, v in final.items()}
    report = _report(data, spec, opts, result)
    try:
        export_model(result.model, tmp["model"], data.features, _metadata(data, spec, opts, result))
        plot_history(result.float_history, result.history, tmp["plot"],
                     f"{data.name} {opts.weights} A{opts.acts}: float {result.float_accuracy:.2%}, "
                     f"quantized {result.accuracy:.2%}")
        if opts.vectors:
            rng = np.random.default_rng(opts.seed)
            pick = np.sort(rng.choice(len(data.y_test), size=min(opts.vectors, len(data.y_test)), replace=False))
            with open(tmp["vectors"], "wb") as handle:
                write_test_vectors(tmp["model"], data.x_test[pick], data.y_test[pick], handle)
        report["seconds"] = round(time.monotonic() - started, 1)
        tmp["report"].write_text(json.dumps(report, indent=1) + "\n")
        for key, path in tmp.items():
            os.replace(path, final[key])
    finally:
        for path in tmp.values():
            if path.exists():
                path.unlink()
    return {"files": tuple(final.values()), "report": report}


def training_data(opts: TrainOptions) -> Dataset:
    """The data set exactly as ``run_training`` trains and tests on it (centred for a 1-bit input)."""
    data = load_dataset(opts.dataset, opts.data, seed=opts.seed, can_duration=opts.can_duration,
                        can_stride=opts.can_stride)
    return data.centred() if opts.input_bits == 1 else data


def run_training(opts: TrainOptions, log=print) -> TrainOutcome:
    """The whole ``qmlp train`` run; raises ConfigError on bad options or data (nothing written)."""
    _check(opts)
    started = time.monotonic()
    set_threads(opts.threads)
    data = training_data(opts)
    check_samples(len(data.y_train), f"dataset {data.name}")  # before any model is built
    spec = ModelSpec(data.features, opts.hidden, data.classes, weights=opts.weights, acts=opts.acts,
                     input_bits=opts.input_bits, input_signed=data.input_signed, input_max=data.input_max)
    log(f"dataset {data.name}: {len(data.y_train)} train / {len(data.y_test)} test samples, "
        f"{data.features} features, classes {', '.join(data.class_names)}")
    log(f"model {'-'.join(map(str, spec.widths))}, weights {opts.weights}, activations {opts.acts}-bit, "
        f"input {opts.input_bits}-bit")
    result = _train_both(spec, data, opts, log)
    written = _write_outputs(opts, data, spec, result, started)
    for path in written["files"]:
        log(f"wrote {path}")
    return TrainOutcome(result.float_accuracy, result.accuracy, result.confusion, data.class_names,
                        written["files"], written["report"])
