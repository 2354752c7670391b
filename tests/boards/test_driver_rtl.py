"""Done-criterion of the boards issue: for each shipped board, the emitted driver round-trips
vectors bit-exactly through the Verilator simulation of the emitted RTL (one small design, built
once and cached by qmlp.sim.rtl), with the packaged IP-XACT component from qmlp.hwgen."""

from __future__ import annotations

import numpy as np
import pytest

from .backends import RtlBackend
from .helpers import fill_bitstream_slots, folded
from qmlp.boards import emit_board_files, get_board
from qmlp.datatypes import INT
from qmlp.hwgen.emit import emit_rtl
from qmlp.hwgen.ipxact import write_component
from qmlp.sim.bitaccurate import simulate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    """3-byte input beats (3 x INT8, 7 inputs zero-padded to 9) in 4-byte DMA beats, so the driver
    sends vectors in groups of 4; 4 accumulators per output beat (6 outputs padded to 8)."""
    df = folded(seed=4, simd=3, pe=4, widths=(7, 10, 6))
    base = tmp_path_factory.mktemp("rtl")
    emit_rtl(df, base / "rtl")
    write_component(df, base / "rtl", base / "ip")
    return df, base


@pytest.mark.parametrize("name, batched", [("zcu104", True), ("kv260", True), ("ultra96v2", True), ("pynq-z2", True),
                                           ("zcu104", False)])
def test_driver_round_trip_through_rtl(design, tmp_path, load_driver, name, batched):
    df, base = design
    out = tmp_path / "out"
    out.mkdir()
    for sub in ("rtl", "ip"):
        (out / sub).symlink_to(base / sub)
    emit_board_files(df, name, out, clock_mhz=get_board(name).clock.default_mhz)
    root = out / "deploy"
    fill_bitstream_slots(root)
    backend = RtlBackend(df, out / "rtl", seed=len(name))
    driver = load_driver(root, lambda bit: backend, batch_gpio="qmlp_batch_gpio" if batched else None)

    acc = driver.Accelerator(batch_size=16)
    acc.identify()  # the RTL's ID and VERSION registers
    rng = np.random.default_rng(7)
    x = (rng.uniform(-1.2, 1.2, size=(42, 7)) * df.input.scale * 128).astype(np.float32)
    y = acc.predict(x)
    assert np.array_equal(y, simulate(df, x).outputs)
    # 16 + 16 + 10 vectors, the last chunk padded to 12 (whole 4-byte DMA beats); one S2MM transfer
    # per chunk through qmlp_tlast_batch, else one per vector (split at the RTL's own TLASTs).
    assert acc.input.vector_group == 4 and backend.runs == 3
    assert acc.dma.recvchannel.transfers == (3 if batched else 44)
    counters = acc.counters()
    assert counters["INFERENCES"] == 44 and counters["LAST_LATENCY"] > 0 and counters["CYCLES"] > 0
    assert backend.registers["INFERENCES_AFTER_CLEAR"] == 0  # the RTL's CTRL clear works
    acc.clear_counters()
    assert acc.counters()["INFERENCES"] == 0
    assert acc.selftest(24) == 0


def test_hardware_argmax_design_through_rtl(tmp_path, load_driver):
    """The argmax unit's class index (UINT3) leaves the fabric; the driver returns it as the label."""
    df = folded(seed=5, simd=4, argmax=True, input_dtype=INT(4), widths=(16, 8, 5))
    out = tmp_path / "out"
    emit_rtl(df, out / "rtl")
    write_component(df, out / "rtl", out / "ip")
    emit_board_files(df, "zcu104", out)
    root = out / "deploy"
    fill_bitstream_slots(root)
    backend = RtlBackend(df, out / "rtl")
    acc = load_driver(root, lambda bit: backend).Accelerator()
    x = (np.random.default_rng(3).uniform(-1.2, 1.2, size=(30, 16)) * df.input.scale * 8).astype(np.float32)
    labels = acc.predict(x)
    assert labels.shape == (30,)
    assert np.array_equal(labels, np.argmax(simulate(df, x).activations[-1], axis=1))
