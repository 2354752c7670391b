"""`qmlp train` end to end on digits (tiny), and its error cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qmlp.cli import main
from qmlp.frontend import import_model
from qmlp.quantize.export import read_metadata
from qmlp.sim.bitaccurate import simulate


def test_train_digits_writes_model_report_plot_vectors(tmp_path, capsys):
    out = tmp_path / "digits.onnx"
    status = main(["train", "--dataset", "digits", "--weights", "ternary", "--acts", "2", "--hidden", "32,16",
                   "--epochs", "2", "--float-epochs", "1", "--batch-size", "32", "--vectors", "16", "--no-progress", "-o", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "float baseline test accuracy" in printed and "quantized (ternary, A2) test accuracy" in printed
    assert "true \\ pred" in printed  # the confusion matrix
    report = json.loads((tmp_path / "digits.json").read_text())
    assert report["topology"] == [64, 32, 16, 10] and report["weights"] == "ternary"
    conf = np.array(report["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == report["samples"]["test"]
    assert report["accuracy"] == pytest.approx(np.trace(conf) / conf.sum())
    assert report["accuracy"] > 0.5  # two epochs already learn digits; guards against a broken loop
    assert len(report["history"]) == 2 and len(report["float_history"]) == 1
    assert (tmp_path / "digits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = read_metadata(out)
    assert meta["qmlp.dataset"] == "digits" and json.loads(meta["qmlp.class_names"]) == [str(d) for d in range(10)]
    assert float(meta["qmlp.accuracy"]) == pytest.approx(report["accuracy"], abs=1e-6)
    assert "intensity/16" in meta["qmlp.input_description"]
    vectors = np.load(tmp_path / "digits.npz")
    assert vectors["x"].shape == (16, 64) and vectors["expected"].shape == (16, 10)
    df = import_model(out)
    sim = simulate(df, vectors["x"])
    np.testing.assert_allclose(sim.outputs, vectors["expected"], rtol=1e-6, atol=1e-6 * np.abs(vectors["expected"]).max())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.json", "digits.npz", "digits.onnx", "digits.png"]


@pytest.mark.parametrize("argv, fragment", [
    (["--dataset", "digits", "--acts", "5"], "--acts 5: activation width must be 1..4 or 8 bits"),
    (["--dataset", "digits", "--input-bits", "9"], "--input-bits 9"),
    (["--dataset", "unsw"], "--dataset unsw needs --data PATH"),
    (["--dataset", "unsw", "--data", "/nonexistent/unsw.npz"], "file not found"),
    (["--dataset", "digits", "--data", "/tmp"], "--data is not used with --dataset digits"),
    (["--dataset", "digits", "--epochs", "0"], "--epochs 0"),
    (["--dataset", "can", "--data", "/nonexistent/DoS_dataset.csv"], "file not found"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, fragment):
    out = tmp_path / "m.onnx"
    assert main(["train", *argv, "--no-progress", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qmlp: error: ") and fragment in err[0]
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_output_must_be_onnx_in_existing_dir(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "-o", str(tmp_path / "m.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "-o", str(tmp_path / "missing" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_hidden_and_choices_are_usage_errors(tmp_path):
    for argv in (["--hidden", "64,x"], ["--hidden", "0"], ["--weights", "int5"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--dataset", "digits", *argv, "-o", str(tmp_path / "m.onnx")])
        assert exit_info.value.code == 2


def test_failure_while_writing_leaves_no_files(tmp_path, monkeypatch):
    from qmlp.quantize import pipeline

    def broken_plot(*args, **kwargs):
        raise OSError("disk full")

    # the model has already been exported to its temporary name when the plot fails
    monkeypatch.setattr(pipeline, "plot_history", broken_plot)
    opts = pipeline.TrainOptions(dataset="digits", output=tmp_path / "m.onnx", hidden=(8,), epochs=1, float_epochs=0,
                                 batch_size=64, progress=False)
    with pytest.raises(OSError, match="disk full"):
        pipeline.run_training(opts, log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rows", [1, 2])
def test_too_few_training_samples_name_the_minimum(tmp_path, capsys, rows):
    data = tmp_path / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x_train=rng.normal(size=(rows, 4)), y_train=np.arange(rows) % 2,
             x_test=rng.normal(size=(3, 4)), y_test=np.array([0, 1, 0]))
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    assert main(["train", "--dataset", "npz", "--data", str(data), "--epochs", "1", "--no-progress", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"qmlp: error: dataset tiny: {rows} training sample(s); training needs at least 3 "
                   "(1 held out for early stopping, 2 for a BatchNorm batch)"]
    assert list(out.parent.iterdir()) == []


def test_minimum_is_what_the_loop_needs():
    from qmlp.errors import ConfigError
    from qmlp.quantize.model import ModelSpec, build_mlp
    from qmlp.quantize.training import TrainConfig, min_samples, train_model

    assert [min_samples(f) for f in (0.0, 0.1, 0.5, 0.7)] == [3, 3, 3, 4]
    spec = ModelSpec(4, (4,), 2, weights="ternary", acts=2, input_bits=8, input_signed=True, input_max=1.0)
    rng = np.random.default_rng(0)
    cfg = TrainConfig(epochs=1, batch_size=2, progress=False, val_fraction=0.7)
    with pytest.raises(ConfigError, match="train: 3 training sample"):
        train_model(build_mlp(spec), rng.normal(size=(3, 4)).astype(np.float32), np.array([0, 1, 0]), cfg)
    history = train_model(build_mlp(spec), rng.normal(size=(4, 4)).astype(np.float32), np.array([0, 1, 0, 1]), cfg)
    assert len(history.epochs) == 1 and np.isfinite(history.epochs[0].loss)
