"""OUT/vivado/ scripts run by the real tclsh against a recording stub of the Vivado commands
(tests/boards/vivado_stub.tcl): order, arguments, referenced files, for every shipped board."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import COMPONENT_HEADER, HERE, folded
from qmlp import __version__
from qmlp.boards import get_board, known_boards
from qmlp.boards.vivado import HDL, TEMPLATES, emit_vivado, tcl_word
from qmlp.errors import ConfigError

TCLSH = shutil.which("tclsh")
pytestmark = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed (apt-get install tcl)")
STUB = HERE / "vivado_stub.tcl"


def run_stub(vivado_dir: Path, *args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    log = vivado_dir.parent / "vivado_calls.log"
    proc = subprocess.run([TCLSH, str(STUB), str(log), "build_bitstream.tcl", *args], cwd=vivado_dir,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)
    calls = [line.split("\x1f") for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def first(calls, *prefix) -> int:
    for i, call in enumerate(calls):
        if call[: len(prefix)] == list(prefix):
            return i
    raise AssertionError(f"no call {prefix}")


def properties(calls, cell: str) -> dict[str, str]:
    """Merged -dict properties set on a block-design cell."""
    merged: dict[str, str] = {}
    for call in calls:
        if call[:2] == ["set_property", "-dict"] and call[3] == f"cell:{cell}":
            words = call[2].split()
            merged.update(zip(words[::2], words[1::2]))
    return merged


@pytest.mark.parametrize("name", ["zcu104", "kv260", "ultra96v2", "pynq-z2"])
def test_full_flow_for_each_board(out_dir, name):
    board = get_board(name)
    df = folded(simd=2)
    emit_vivado(df, board, out_dir / "vivado", clock_mhz=board.clock.default_mhz)
    proc, calls = run_stub(out_dir / "vivado", "-jobs", "3")
    assert proc.returncode == 0, proc.stderr
    mhz = f"{board.clock.default_mhz:g}"
    assert f"qmlp: PL clock requested {mhz} MHz, PS gives {mhz} MHz" in proc.stdout
    # Order of the flow.
    order = [first(calls, "create_project"), first(calls, "set_property", "board_part"),
             first(calls, "set_property", "ip_repo_paths"), first(calls, "create_bd_design"),
             first(calls, "apply_bd_automation"), first(calls, "create_bd_cell", "-type", "ip", "-vlnv", "qmlp.dev:qmlp:qmlp_top:1.0"),
             first(calls, "assign_bd_address"), first(calls, "validate_bd_design"), first(calls, "make_wrapper"),
             first(calls, "launch_runs", "synth_1"), first(calls, "wait_on_run", "synth_1"),
             first(calls, "launch_runs", "impl_1"), first(calls, "wait_on_run", "impl_1"),
             first(calls, "report_utilization"), first(calls, "report_timing_summary"), first(calls, "write_hw_platform")]
    assert order == sorted(order)
    # Part, board part, jobs.
    create = calls[first(calls, "create_project")]
    assert create[create.index("-part") + 1] == board.part
    assert calls[first(calls, "set_property", "board_part")][2] == board.board_part
    assert calls[first(calls, "launch_runs", "impl_1")] == ["launch_runs", "impl_1", "-to_step", "write_bitstream", "-jobs", "3"]
    # PS: right IP (newest version), board preset, clock, ports.
    ps_cell = calls[first(calls, "create_bd_cell")]
    assert ps_cell[-1] == "ps" and ps_cell[4] == f"xilinx.com:ip:{board.ps_ip}:2.1"
    auto = calls[first(calls, "apply_bd_automation")]
    assert auto[2] == f"xilinx.com:bd_rule:{board.ps_ip}" and 'apply_board_preset "1"' in auto[4]
    ps = properties(calls, "ps")
    if board.ps_ip == "zynq_ultra_ps_e":
        assert ps["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "200"
        assert ps["CONFIG.PSU__USE__S_AXI_GP2"] == "1" and ps["CONFIG.PSU__SAXIGP2__DATA_WIDTH"] == "128"
        assert ps["CONFIG.PSU__USE__M_AXI_GP0"] == "1" and ps["CONFIG.PSU__USE__M_AXI_GP1"] == "0"
    else:
        assert ps["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == "100"
        assert ps["CONFIG.PCW_USE_S_AXI_HP0"] == "1" and ps["CONFIG.PCW_S_AXI_HP0_DATA_WIDTH"] == "64"
        assert "FIXED_IO, DDR" in auto[4]
    # DMA widths from the packing: 2 x INT8 in = 16 bits; 1 x acc out.
    dma = properties(calls, "axi_dma_0")
    assert dma["CONFIG.c_include_sg"] == "0"
    assert dma["CONFIG.c_m_axis_mm2s_tdata_width"] == "16" and dma["CONFIG.c_s_axis_s2mm_tdata_width"] == "8"
    assert dma["CONFIG.c_m_axi_mm2s_data_width"] == str(board.dma.width_bits)
    # Streams and AXI-Lite wiring.
    intf = {tuple(c[1:]) for c in calls if c[0] == "connect_bd_intf_net"}
    assert ("intf:axi_dma_0/M_AXIS_MM2S", "intf:qmlp_0/s_axis") in intf
    assert ("intf:qmlp_0/m_axis", "intf:qmlp_batch/s_axis") in intf
    assert ("intf:qmlp_batch/m_axis", "intf:axi_dma_0/S_AXIS_S2MM") in intf
    assert (f"intf:ps/{board.control_port}", "intf:qmlp_control/S00_AXI") in intf
    assert ("intf:qmlp_control/M01_AXI", "intf:qmlp_0/s_axi_control") in intf
    assert ("intf:qmlp_control/M02_AXI", "intf:qmlp_batch_gpio/S_AXI") in intf
    # The batch TLAST block: a module reference to the Verilog added to the project, sized to the
    # output beat, its frame count driven by the GPIO.
    batch = calls[first(calls, "create_bd_cell", "-type", "module")]
    assert batch[-3:] == ["-reference", "qmlp_tlast_batch", "qmlp_batch"]
    assert first(calls, "add_files") < first(calls, "create_bd_cell", "-type", "module")
    assert ["set_property", "CONFIG.DATA_BYTES", "1", "cell:qmlp_batch"] in calls
    assert properties(calls, "qmlp_batch_gpio") == {"CONFIG.C_GPIO_WIDTH": "32", "CONFIG.C_ALL_OUTPUTS": "1"}
    assert ["connect_bd_net", "pin:qmlp_batch_gpio/gpio_io_o", "pin:qmlp_batch/frames"] in calls
    assert (out_dir / "vivado" / "hdl" / "qmlp_tlast_batch.v").is_file()
    assert ("intf:qmlp_memory/M00_AXI", f"intf:ps/{board.dma.port}") in intf
    clock_net = next(c for c in calls if c[0] == "connect_bd_net" and c[1] == f"pin:ps/{board.clock.name}")
    assert {"pin:qmlp_0/ap_clk", "pin:qmlp_batch/aclk", "pin:qmlp_batch_gpio/s_axi_aclk"} <= set(clock_net[2].split())
    # Files: bitstream + hwh copied into the deploy slots, reports written.
    assert (out_dir / "deploy" / "bitstream" / "qmlp.bit").is_file()
    assert (out_dir / "deploy" / "bitstream" / "qmlp.hwh").is_file()
    for report in ("utilization.rpt", "timing_summary.rpt", "address_map.txt", "qmlp_bd_recreate.tcl"):
        assert (out_dir / "vivado" / "reports" / report).is_file()
    assert "/ps/Data/SEG_qmlp_0_Reg 0xA0000000 64K" in (out_dir / "vivado" / "reports" / "address_map.txt").read_text()


def test_width_converter_when_beat_is_not_a_power_of_two(out_dir):
    df = folded(simd=3)  # 3 x INT8 = 3-byte beats; the DMA moves 4
    emit_vivado(df, get_board("zcu104"), out_dir / "vivado", clock_mhz=150)
    proc, calls = run_stub(out_dir / "vivado", "-stop-after", "block_design")
    assert proc.returncode == 0, proc.stderr
    conv = properties(calls, "qmlp_in_width")
    assert conv["CONFIG.S_TDATA_NUM_BYTES"] == "4" and conv["CONFIG.M_TDATA_NUM_BYTES"] == "3"
    assert properties(calls, "axi_dma_0")["CONFIG.c_m_axis_mm2s_tdata_width"] == "32"
    intf = {tuple(c[1:]) for c in calls if c[0] == "connect_bd_intf_net"}
    assert ("intf:axi_dma_0/M_AXIS_MM2S", "intf:qmlp_in_width/S_AXIS") in intf
    assert ("intf:qmlp_in_width/M_AXIS", "intf:qmlp_0/s_axis") in intf
    assert properties(calls, "ps")["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "150"
    assert not any(c[0] == "launch_runs" for c in calls)  # stopped after the block design


@pytest.mark.parametrize("setup, env, message", [
    (lambda out: (out / "ip" / "component.xml").unlink(), {}, "component.xml is missing; run 'qmlp compile'"),
    (lambda out: None, {"STUB_NO_BOARD_FILES": "1"}, "Vivado has no board files for xilinx.com:zcu104:part0:1.1"),
    (lambda out: None, {"STUB_RUN_FAILS": "1"}, "qmlp: synthesis failed (synth_1 at 30%)"),
    (lambda out: (out / "ip" / "component.xml").write_text(COMPONENT_HEADER.replace("qmlp.dev", "other.org")), {},
     "does not provide qmlp.dev:qmlp:qmlp_top:1.0; rerun 'qmlp compile'"),
])
def test_script_stops_with_a_clear_message(out_dir, setup, env, message):
    emit_vivado(folded(), get_board("zcu104"), out_dir / "vivado", clock_mhz=200)
    setup(out_dir)
    proc, _ = run_stub(out_dir / "vivado", env=env)
    assert proc.returncode != 0 and message in proc.stderr


def test_other_installed_board_file_version_is_used(out_dir):
    emit_vivado(folded(), get_board("zcu104"), out_dir / "vivado", clock_mhz=200)
    proc, calls = run_stub(out_dir / "vivado", "-stop-after", "create_project", env={"STUB_OTHER_BOARD_VERSIONS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert calls[first(calls, "set_property", "board_part")][2] == "xilinx.com:zcu104:part0:1.10"
    assert "board files xilinx.com:zcu104:part0:1.1 not installed, using xilinx.com:zcu104:part0:1.10" in proc.stdout


def test_every_file_is_stamped_with_the_version(out_dir):
    written = emit_vivado(folded(), get_board("pynq-z2"), out_dir / "vivado", clock_mhz=100)
    assert sorted(p.name for p in written) == sorted(("qmlp_config.tcl", *TEMPLATES, *HDL))
    for path in written:
        assert f"Generated by qmlp {__version__}" in "\n".join(path.read_text().splitlines()[:2]), path
    assert (out_dir / "vivado" / "build.sh").read_text().startswith("#!/bin/sh\n")
    assert os.access(out_dir / "vivado" / "build.sh", os.X_OK)


def test_build_sh_without_vivado_says_what_to_do(out_dir):
    emit_vivado(folded(), get_board("zcu104"), out_dir / "vivado", clock_mhz=200)
    proc = subprocess.run(["/bin/sh", "build.sh"], cwd=out_dir / "vivado", capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "VIVADO": "vivado-not-installed"})
    assert proc.returncode == 127
    assert "qmlp: Vivado is needed to build the bitstream" in proc.stderr and "settings64.sh" in proc.stderr


def test_make_bitstream_runs_vivado_batch_when_on_path(out_dir, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    emit_vivado(folded(), get_board("kv260"), out_dir / "vivado", clock_mhz=200)
    # A fake 'vivado' that checks the batch-mode arguments, then runs the script under the stub.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "vivado"
    fake.write_text(f"""#!/bin/sh
echo "$@" > {tmp_path}/vivado_args
[ "$1" = -mode ] && [ "$2" = batch ] || exit 3
while [ "$1" != -source ]; do shift; done
script=$2; shift 2
[ "$1" = -tclargs ] && shift
exec {TCLSH} {STUB} {tmp_path}/calls.log "$script" "$@"
""")
    fake.chmod(0o755)
    proc = subprocess.run(["make", "bitstream", "JOBS=5"], cwd=out_dir / "vivado", capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}, timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    args = (tmp_path / "vivado_args").read_text().split()
    assert args[:2] == ["-mode", "batch"] and "build_bitstream.tcl" in args and args[-2:] == ["-jobs", "5"]
    sums = (out_dir / "deploy" / "bitstream" / "SHA256SUMS").read_text().split()
    assert sums[1::2] == ["qmlp.bit", "qmlp.hwh"] and len(sums[0]) == 64


def test_tcl_word_quotes_or_refuses():
    assert tcl_word("xczu7ev-ffvc1156-2-e") == "xczu7ev-ffvc1156-2-e"
    assert tcl_word("a b") == "{a b}"
    assert tcl_word("$x [y]") == "{$x [y]}"
    for bad in ("a\\b", "a}b{", "{"):
        with pytest.raises(ConfigError, match="cannot be written into a Tcl script"):
            tcl_word(bad)


def test_known_boards_all_emit(out_dir):
    for name in known_boards():
        emit_vivado(folded(), get_board(name), out_dir / name, clock_mhz=get_board(name).clock.default_mhz)
        assert (out_dir / name / "qmlp_config.tcl").read_text().count("\nset ") == 25
