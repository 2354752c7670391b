"""The emitted PYNQ driver, end to end on the host: fake pynq objects forward DMA transfers and
register reads to a simulation backend; results must equal the bit-accurate simulator bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .backends import BitAccurateBackend
from .helpers import fill_bitstream_slots, folded
from .fake_pynq import make_pynq
from qmlp import packing
from qmlp.boards import emit_board_files
from qmlp.datatypes import BIPOLAR, INT
from qmlp.ir import SCHEMA_VERSION
from qmlp.sim.bitaccurate import quantize_input, simulate


def deploy(out_dir: Path, df, board: str = "zcu104") -> Path:
    emit_board_files(df, board, out_dir)
    root = out_dir / "deploy"
    fill_bitstream_slots(root)
    return root


def float_inputs(df, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Wide enough to hit both clip limits and every rounding case of the input quantizer.
    scale = df.input.scale * max(abs(df.input.qmin), abs(df.input.qmax))
    return (rng.uniform(-1.3, 1.3, size=(n, df.input.features)) * scale).astype(np.float32)


@pytest.mark.parametrize("case", [
    dict(simd=2, pe=1),
    dict(simd=3, pe=3, widths=(12, 10, 6)),  # 3-byte input beats, 3 accumulators per output beat
    dict(simd=3, pe=4, widths=(7, 10, 6)),  # 9-byte vectors in 4-byte DMA beats: groups of 4; padded dims
    dict(simd=4, pe=1, input_dtype=INT(4), widths=(16, 8, 5)),
    dict(simd=5, pe=1, input_dtype=BIPOLAR, widths=(20, 8, 4)),
])
@pytest.mark.parametrize("batched", [True, False], ids=["batch-tlast", "per-vector"])
def test_predict_is_bit_exact_with_the_simulator(out_dir, load_driver, case, batched):
    df = folded(**case)
    root = deploy(out_dir, df)
    driver = load_driver(root, lambda bit: BitAccurateBackend(df), batch_gpio="qmlp_batch_gpio" if batched else None)
    acc = driver.Accelerator(batch_size=7)  # 50 samples: 7 full chunks and a partial one
    x = float_inputs(df, 50)
    y = acc.predict(x)
    expected = simulate(df, x)
    assert y.dtype == np.float32 and y.shape == expected.outputs.shape
    assert np.array_equal(y, expected.outputs)
    assert np.array_equal(acc.quantize(x), quantize_input(df.input, x))
    assert np.array_equal(acc.pack(expected.inputs).reshape(50, -1),
                          packing.pack(expected.inputs, df.input.dtype, df.stream.in_elems_per_beat).reshape(50, -1))
    assert np.array_equal(acc.predict(x, argmax=True), np.argmax(expected.outputs, axis=1))
    group = acc.input.vector_group  # vectors per MM2S transfer come in whole DMA beats
    chunk = max(group, 7 - 7 % group)
    sizes = [min(chunk, 50 - start) for start in range(0, 50, chunk)]
    padded = [-(-n // group) * group for n in sizes]
    assert acc.transfer_plan(50) == list(zip(sizes, padded))
    assert acc.dma.sendchannel.transfers == 2 * len(sizes)  # predict ran twice
    # With qmlp_tlast_batch one S2MM transfer per chunk (GPIO: 0, then the chunk size).
    assert acc.dma.recvchannel.transfers == 2 * (len(sizes) if batched else sum(padded))
    if batched:
        assert acc.batch_gpio.writes == [v for n in padded * 2 for v in (0, n)]
    assert acc.counters()["INFERENCES"] == 2 * sum(padded)
    acc.clear_counters()
    assert acc.counters() == {"LAST_LATENCY": 0, "INFERENCES": 0, "CYCLES": 0}
    acc.close()


def test_hardware_argmax_returns_class_indices(out_dir, load_driver):
    df = folded(argmax=True, widths=(12, 9, 6))
    root = deploy(out_dir, df)
    config = json.loads((root / "qmlp_driver" / "driver_config.json").read_text())
    assert config["output"] == {"dtype": "UINT3", "elems": 1, "elems_per_beat": 1, "beat_bytes": 1,
                                "dma_bytes": 1}
    acc = load_driver(root, lambda bit: BitAccurateBackend(df)).Accelerator()
    x = float_inputs(df, 30)
    labels = acc.predict(x)
    assert np.array_equal(labels, np.argmax(simulate(df, x).activations[-1], axis=1))


def test_identify_selftest_and_their_failures(out_dir, load_driver):
    df = folded()
    root = deploy(out_dir, df)
    driver = load_driver(root, lambda bit: BitAccurateBackend(df))
    acc = driver.Accelerator()
    assert acc.identify() == {"ID": 0x514D4C50, "VERSION": (SCHEMA_VERSION << 16) | 3}
    assert acc.selftest(64) == 0
    broken = driver.Accelerator(overlay=make_pynq(lambda bit: BitAccurateBackend(df, corrupt=True)).Overlay(
        str(root / "bitstream" / "qmlp.bit")))
    assert broken.selftest(64) == 1  # the one flipped bit is found
    other = folded(widths=(12, 9, 3))  # two layers: VERSION differs
    wrong = driver.Accelerator(overlay=make_pynq(lambda bit: BitAccurateBackend(other)).Overlay(
        str(root / "bitstream" / "qmlp.bit")))
    with pytest.raises(driver.DriverError, match=rf"VERSION register reads 0x{SCHEMA_VERSION:04x}0002, "
                                                 rf"expected 0x{SCHEMA_VERSION:04x}0003"):
        wrong.identify()


def test_missing_bitstream_is_a_clear_error(out_dir, load_driver):
    df = folded()
    emit_board_files(df, "pynq-z2", out_dir)
    driver = load_driver(out_dir / "deploy", lambda bit: BitAccurateBackend(df))
    with pytest.raises(driver.DriverError, match=r"qmlp.bit \(and its .hwh\) not found; build it with 'make bitstream'"):
        driver.Accelerator()


def test_bad_input_shapes_are_refused(out_dir, load_driver):
    df = folded()
    acc = load_driver(deploy(out_dir, df), lambda bit: BitAccurateBackend(df)).Accelerator()
    with pytest.raises(ValueError, match=r"input shape \(2, 5\) does not match \(batch, 12\)"):
        acc.predict(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"integer input outside INT8"):
        acc.execute(np.full((1, 12), 300))
    x = np.zeros((2, 12), np.float32)
    x[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"^input: 1 values are NaN or infinite .* first at index \[1, 3\]"):
        acc.predict(x)


def test_driver_runs_without_qmlp_installed(out_dir):
    """On the board there is no qmlp: the package must import and compute with numpy alone."""
    df = folded()
    root = deploy(out_dir, df)
    x = float_inputs(df, 5)
    np.save(out_dir / "x.npy", x)
    code = ("import sys; sys.modules['qmlp'] = None; sys.modules['pynq'] = None\n"
            "import numpy as np, qmlp_driver\n"
            "from qmlp_driver._core import bitaccurate, ir\n"
            "df = ir.load('dataflow.json')\n"
            f"y = bitaccurate.simulate(df, np.load({str(out_dir / 'x.npy')!r})).outputs\n"
            f"np.save({str(out_dir / 'y.npy')!r}, y)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.load(out_dir / "y.npy"), simulate(df, x).outputs)


def test_generated_core_is_qmlp_source(out_dir):
    """_core is generated from qmlp's modules (one source), only the import lines differ."""
    emit_board_files(folded(), "zcu104", out_dir)
    core = out_dir / "driver" / "qmlp_driver" / "_core"
    original = (Path(__file__).parents[2] / "qmlp" / "sim" / "bitaccurate.py").read_text().splitlines()
    bundled = (core / "bitaccurate.py").read_text().splitlines()
    assert bundled[0].startswith("# Generated by qmlp") and "qmlp/sim/bitaccurate.py" in bundled[0]
    diff = [(a, b) for a, b in zip(original, bundled[1:]) if a != b]
    assert diff == [("from ..datatypes import BIPOLAR", "from .datatypes import BIPOLAR"),
                    ("from ..ir import Dataflow, InputQuant, Layer, Thresholds",
                     "from .ir import Dataflow, InputQuant, Layer, Thresholds")]
    assert (core / "packing.py").read_text().splitlines()[1:] == \
        (Path(__file__).parents[2] / "qmlp" / "packing.py").read_text().splitlines()
