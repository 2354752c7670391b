"""The `qmlp compile` build as an explicit list of steps, each ``step(state) -> state``.

Read :func:`build_steps` top to bottom to see what a compile does. Every step writes only into
``state.work_dir``, a temporary sibling of the output directory; :func:`run_build` renames it into
place after the last step, so a failed build leaves no half-written output (and an existing
output directory is only replaced by a complete new one).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__
from ..build import DATAFLOW, TOP_VERILOG
from ..errors import ConfigError, QmlpError, ToolError
from ..ir import Dataflow, from_json, load, replace, save, to_json, verify
from ..untrusted import quote_name
from . import fold as folding
from .estimate import NetworkEstimate, estimate, summary_markdown, timing_warning, write_estimate_reports
from .plan import Storage, Unit, build_plan

__all__ = ["CompileOptions", "BuildState", "Step", "build_steps", "run_build", "load_input", "MARKER"]

# Written into every build: `-o DIR` replaces DIR only if it is empty or holds this file.
MARKER = ".qmlp-build"


@dataclass(frozen=True)
class CompileOptions:
    model: Path  # an ONNX model, or a dataflow.json IR (then no model.onnx is copied)
    board: str = "zcu104"
    out: Path | None = None  # default build/<model stem>
    clock_mhz: float | None = None  # default: the board's PL clock
    target_fps: float | str | None = None  # number, "max", or None for the default rule
    folding: Path | None = None  # FINN final_hw_config.json (exclusive with target_fps)
    argmax: bool = False
    synth: bool = False
    backend: str = "native"  # native | finn
    allow_overfit: bool = False  # build even when the estimate exceeds the part
    force: bool = False  # replace an output folder qmlp did not write (never one holding an input)

    @property
    def out_dir(self) -> Path:
        return self.out if self.out is not None else Path("build") / self.model.stem


@dataclass(frozen=True)
class BuildState:
    options: CompileOptions
    work_dir: Path
    board: object | None = None  # qmlp.boards.Board
    df: Dataflow | None = None
    estimate: NetworkEstimate | None = None
    rtl_files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)  # one-line results shown after a step
    failure: QmlpError | None = None  # raised after the output is published (a failed --synth)


Step = Callable[[BuildState], BuildState]


def load_input(path: Path) -> Dataflow:
    """An ONNX model through the frontend, or an already lowered dataflow.json."""
    if not path.exists():
        raise ConfigError(f"model {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"model {path}: is a directory; pass a QONNX model (.onnx) or a dataflow.json")
    if path.suffix == ".json":
        return load(path)  # InputError naming the file and field
    from ..frontend import import_model
    return import_model(path)


# --- steps (each: expects / guarantees in one docstring line) -----------------------------------

def step_board(state: BuildState) -> BuildState:
    """Resolve the board (ConfigError if unknown) -> state.board."""
    from ..boards import get_board
    board = get_board(state.options.board)
    return replace(state, board=board, notes=(f"{board.name}: {board.part}, {board.clock.default_mhz:g} MHz",))


def step_import(state: BuildState) -> BuildState:
    """Load and lower the model -> a verified, unfolded state.df (argmax flag applied)."""
    df = load_input(state.options.model)
    if state.options.argmax:
        df = replace(df, argmax=True)
    verify(df)
    if state.options.model.suffix != ".json":
        # What compile writes, `load` must read back: the lowered model within the IR's limits.
        from_json(to_json(df), f"model {state.options.model}")
    return replace(state, df=df, notes=(f"{len(df.layers)} layers: "
                                         + " -> ".join([str(df.input.features)] + [str(l.out_features) for l in df.layers]),))


def step_fold(state: BuildState) -> BuildState:
    """Choose (target fps) or apply (--folding) PE/SIMD -> folded state.df with stream and clock."""
    opts, df = state.options, state.df
    clock = opts.clock_mhz if opts.clock_mhz is not None else state.board.clock.default_mhz
    if opts.folding is not None:
        df = folding.apply_folding(df, folding.read_folding(opts.folding), clock_mhz=clock,
                                   family=state.board.family, source=str(opts.folding))
        how = f"from {opts.folding}"
    else:
        target = opts.target_fps if opts.target_fps is not None else folding.default_target_fps(df, clock)
        df = folding.fold(df, target_fps=target, clock_mhz=clock, family=state.board.family,
                          part=state.board.resources)
        how = f"target {target if target == 'max' else f'{float(target):,.0f}'} inferences/s at {clock:g} MHz"
        if target != "max" and float(target) < folding.slowest_fps(df, clock):
            how += (f" (below the slowest design, {folding.slowest_fps(df, clock):,.0f}/s at PE = SIMD = 1: "
                    f"built that)")
    verify(df)
    pes = ", ".join(f"{quote_name(l.name)} {l.folding.pe}x{l.folding.simd}" for l in df.layers)
    in_bram = [quote_name(p.name) for p in build_plan(df).layers if p.weights.kind is Storage.BRAM]
    return replace(state, df=df, notes=(f"{how}; PE x SIMD: {pes}; weights in block RAM: "
                                        f"{', '.join(in_bram) or 'none'}",))


def step_estimate(state: BuildState) -> BuildState:
    """Estimate cycles, resources and fmax -> report/estimate_*.json, summary.md, resources.png;
    FitError (nothing written) when the estimate exceeds the part, unless --allow-overfit."""
    from .synth import check_counts
    est = estimate(state.df, state.board.family)
    if not state.options.allow_overfit:
        check_counts(est.counts(), state.board,
                     "the calibrated estimate is", "lower --target-fps, pick a larger board (qmlp boards) or "
                     "pass --allow-overfit to build it anyway")
    write_estimate_reports(est, state.work_dir / "report", totals=state.board.resources.counts(), board=state.board.name)
    note = (f"II {est.ii_cycles:g} cycles ({est.throughput_fps:,.0f}/s), latency {est.latency_cycles} cycles "
            f"({est.latency_ns:,.0f} ns), ~{est.lut} LUT, {est.bram36:g} BRAM36, fmax ~{est.fmax_mhz:.0f} MHz (est.)")
    if est.fmax_mhz < est.clock_mhz:
        note += f"; WARNING: {timing_warning(est)}"
    return replace(state, estimate=est, notes=(note,))


def step_write_ir(state: BuildState) -> BuildState:
    """Write dataflow.json, final_hw_config.json and a copy of the source model (model.onnx)."""
    df = replace(state.df, metadata={**state.df.metadata, "qmlp_version": __version__, "board": state.board.name})
    save(df, state.work_dir / DATAFLOW)
    folding.write_final_hw_config(df, state.work_dir / "final_hw_config.json")
    if state.options.model.suffix != ".json":
        shutil.copyfile(state.options.model, state.work_dir / "model.onnx")
    return replace(state, df=df, notes=())


def step_rtl(state: BuildState) -> BuildState:
    """Emit the Verilog library and the generated top qmlp_top -> rtl/."""
    from .emit import emit_rtl
    files = tuple(Path(p) for p in emit_rtl(state.df, state.work_dir / "rtl"))
    return replace(state, rtl_files=files, notes=(f"{len(files)} Verilog files",))


def step_ip(state: BuildState) -> BuildState:
    """Package rtl/ as an IP-XACT component -> ip/component.xml."""
    from .ipxact import write_component
    path = write_component(state.df, state.work_dir / "rtl", state.work_dir / "ip")
    return replace(state, notes=(str(path.relative_to(state.work_dir)),))


def step_board_files(state: BuildState) -> BuildState:
    """Vivado scripts, PYNQ driver and deploy package (boards package) -> vivado/, driver/, deploy/."""
    from ..boards import emit_board_files
    files = emit_board_files(state.df, state.board, state.work_dir)
    return replace(state, notes=(f"{len(files)} files in vivado/, driver/, deploy/",))


def step_finn(state: BuildState) -> BuildState:
    """--backend finn: a FINN build directory (model + build config + qmlp's folding rounded up to
    FINN's divisors) -> finn/; where a FINN environment exists, FINN's Vivado-free steps run, its
    estimates land in report/finn/ and a side-by-side section of report/summary.md, and its
    hardware graph is cross-checked against qmlp's simulator (report/finn/crosscheck.json)."""
    from ..boards.finn import FINN_VERSION, finn_python, write_finn_build
    from ..boards.finn_check import CROSSCHECK_SAMPLES, finn_crosscheck, write_crosscheck
    from ..boards.finn_report import copy_finn_reports, read_finn_estimate, side_by_side_markdown
    if state.options.model.suffix == ".json":
        raise ConfigError(f"--backend finn needs the ONNX model, not the IR {state.options.model}")
    raised: list[str] = []
    build = write_finn_build(state.options.model, state.board, state.work_dir / "finn",
                             clock_mhz=state.df.clock_mhz, folding=state.df, log=raised.append)
    final = state.options.out_dir / "finn"
    command = f"cd {final} && {build.command}"
    if not build.ran:
        return replace(state, notes=(f"wrote {final}/ (FINN's whole flow, needs Vivado: {command}); "
                                     "no FINN environment here for its estimates: `make finn` builds one",))
    if build.error:
        return replace(state, notes=(f"wrote {final}/; FINN's Vivado-free steps failed: {build.error} "
                                     f"(log: {final}/output/finn_runner.log)",))
    output = state.work_dir / "finn" / "output"
    copy_finn_reports(output, state.work_dir / "report" / "finn")
    finn = read_finn_estimate(output / "report")
    rounded = [re.sub(r"^finn: (\S+) (\w+)=(\d+) .* using (\d+),.*$", r"\1 \2 \3 -> \4", line)
               for line in raised if "next divisor up" in line]
    folding_note = (f"qmlp's PE/SIMD, rounded up to the next divisor FINN accepts ({', '.join(rounded)}; never "
                    "below the requested rate)" if rounded else "qmlp's PE/SIMD, unchanged")
    agreement = finn_crosscheck(state.options.model, state.df, state.work_dir / "finn", finn_python(),
                                samples=CROSSCHECK_SAMPLES)
    write_crosscheck(agreement, state.work_dir / "report" / "finn" / "crosscheck.json")
    with open(state.work_dir / "report" / "summary.md", "a") as summary:
        qmlp_estimate = state.estimate or estimate(state.df)  # a build resumed after the estimate step
        summary.write(side_by_side_markdown(qmlp_estimate, finn, finn_version=FINN_VERSION,
                                            folding_note=folding_note))
        summary.write(f"Cross-check: {agreement.one_line()}.\n")
    return replace(state, notes=(f"{FINN_VERSION} estimate: {finn.lut:,.0f} LUT, {finn.bram18:g} BRAM18, II "
                                 f"{finn.max_cycles:,} cycles; {agreement.short()}; -> report/finn/, summary.md; full flow: "
                                 f"{command}",))


def step_synth(state: BuildState) -> BuildState:
    """Yosys synth_xilinx on rtl/ -> report/synth_resources.json and summary.md with the Yosys
    figures; a design that does not fit is still written, then reported as FitError. The adder
    graphs of fully parallel layers are synthesized out of context, one run each, and added in
    (``synthesize_parts``; listed as ``out_of_context_parts``)."""
    from .emit import graph_module
    from .synth import FitError, check_fit, synthesize_parts, write_synth_report
    graphs = [graph_module(p) for p in build_plan(state.df).layers if p.unit is Unit.CONST]
    result = synthesize_parts(state.work_dir / "rtl", family=state.board.family, parts=graphs)
    report = state.work_dir / "report"
    data = write_synth_report(result, report / "synth_resources.json", clock_mhz=state.df.clock_mhz,
                              part=state.board.part)
    (report / "summary.md").write_text(summary_markdown(state.estimate, state.board.resources.counts(), state.board.name,
                                                        synth=data))
    try:
        check_fit(result, state.board)
    except FitError as error:
        return replace(state, failure=error, notes=(result.one_line(),))
    return replace(state, notes=(result.one_line(),))


def build_steps(options: CompileOptions) -> list[tuple[str, Step]]:
    """The compile, in order. Each step reads and returns a BuildState."""
    steps: list[tuple[str, Step]] = [
        ("board", step_board),
        ("import", step_import),
        ("fold", step_fold),
        ("estimate", step_estimate),
        ("write IR", step_write_ir),
        ("rtl", step_rtl),
        ("ip-xact", step_ip),
        ("board files", step_board_files),
    ]
    if options.backend == "finn":
        steps.append(("finn", step_finn))
    if options.synth:
        steps.append(("synth", step_synth))
    return steps


def _check_options(options: CompileOptions) -> None:
    if options.folding is not None and options.target_fps is not None:
        raise ConfigError("--folding and --target-fps both given; choose one")
    if options.backend not in ("native", "finn"):
        raise ConfigError(f"--backend {options.backend!r}: choose native or finn")
    if options.clock_mhz is not None and not 0 < options.clock_mhz < math.inf:
        raise ConfigError(f"--clock-mhz {options.clock_mhz:g}: must be a positive, finite frequency in MHz")
    _check_out_dir(options)


def _written_by_qmlp(out: Path) -> bool:
    """The marker, or (builds from before the marker existed) a dataflow.json beside rtl/qmlp_top.v."""
    return (out / MARKER).is_file() or ((out / DATAFLOW).is_file() and (out / "rtl" / TOP_VERILOG).is_file())


def _check_out_dir(options: CompileOptions) -> None:
    """-o may replace only an empty folder or an earlier build (or anything with --force), and
    never the current directory, a parent of it, or a folder holding an input file."""
    shown = options.out_dir
    out = shown.resolve()
    if out == Path.cwd().resolve() or out in Path.cwd().resolve().parents:
        raise ConfigError(f"-o {shown}: refusing to replace the current directory or a parent")
    if out == Path.home().resolve() or len(out.parts) <= 2:
        raise ConfigError(f"-o {shown}: refusing to replace the home directory or a top-level folder")
    for flag, path in (("model", options.model), ("--folding", options.folding)):
        if path is not None and out in Path(path).resolve().parents:
            raise ConfigError(f"-o {shown}: holds the {flag} {path}; choose an output folder that does not "
                              "contain the inputs (even --force never replaces it)")
    if shown.is_symlink():
        raise ConfigError(f"-o {shown}: is a symbolic link; pass the folder it points to, or another folder")
    if not shown.exists():
        return
    if not shown.is_dir():
        raise ConfigError(f"-o {shown}: exists and is not a directory")
    try:
        empty = next(shown.iterdir(), None) is None
    except OSError as error:
        raise ConfigError(f"-o {shown}: cannot be read ({error.strerror or error})") from None
    if not (empty or options.force or _written_by_qmlp(shown)):
        raise ConfigError(f"-o {shown}: folder is not empty and was not written by qmlp (no {MARKER}); "
                          "choose another folder, or pass --force to replace it and everything in it")


def _publish(work: Path, out: Path) -> None:
    """Move the finished work directory to ``out``, replacing an old build only at the end."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    work.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_build(options: CompileOptions, *, log: Callable[[str], None] = print,
              steps: list[tuple[str, Step]] | None = None) -> BuildState:
    """Run every step into a temporary sibling directory, then rename it to the output directory.

    On any exception the temporary directory is removed and the error propagates; an OSError
    inside a step (filesystem, tools) becomes a one-line ToolError naming the step."""
    _check_options(options)
    out = options.out_dir
    work = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        (work / MARKER).write_text(f"written by qmlp {__version__} (qmlp compile); 'qmlp compile -o' may replace "
                                   "this folder\n")
    except BaseException as error:  # a signal between mkdir and the build's own try: leave no scratch
        shutil.rmtree(work, ignore_errors=True)
        if not isinstance(error, OSError):
            raise
        blocker = next((p for p in out.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise ConfigError(f"-o {out}: {blocker} is a file, not a folder; choose another output folder") from None
        raise ConfigError(f"-o {out}: cannot create the output folder there ({error.strerror or error})") from None
    try:
        state = BuildState(options=options, work_dir=work)
        steps = build_steps(options) if steps is None else steps
        total = time.perf_counter()
        for index, (name, step) in enumerate(steps, 1):
            start = time.perf_counter()
            try:
                state = step(state)
            except OSError as error:
                raise ToolError(f"compile step '{name}' failed: {error}") from error
            note = f"  {state.notes[0]}" if state.notes else ""
            log(f"[{index}/{len(steps)}] {name:<12} {time.perf_counter() - start:6.2f} s{note}")
            if state.failure is not None:
                break
        try:
            _publish(work, out)
        except OSError as error:
            raise ConfigError(f"-o {out}: cannot move the finished build into place ({error.strerror or error})") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log(f"wrote {out}/ in {time.perf_counter() - total:.2f} s")
    if state.failure is not None:
        raise state.failure
    return replace(state, work_dir=out)
