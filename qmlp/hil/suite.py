"""The HIL test suite: the same cases against the virtual board or a real board over the network.

Every expected value comes from the bit-accurate simulator of the OUT folder's dataflow.json
(``qmlp.sim.bitaccurate``), compared with ``np.array_equal``: integers into the fabric, integers
out of it, and the dequantized floats. Cases run in order on one session, because some of them
(back-to-back runs, reset, reload) are about what state the board carries between requests.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..datatypes import BIPOLAR
from ..ir import Dataflow
from ..untrusted import finite_floats
from ..sim.bitaccurate import dequantize_output, fabric_run, quantize_input
from .client import BoardClient, RunReply
from .protocol import HilError, RemoteError

__all__ = ["CaseResult", "SuiteReport", "CaseFailure", "run_suite", "load_vectors", "expected_outputs",
           "boundary_inputs", "CASES"]


class CaseFailure(AssertionError):
    """The board answered, but not what the simulator predicts."""


@dataclass(frozen=True)
class CaseResult:
    name: str
    status: str  # "pass", "fail" (wrong answer) or "error" (no usable answer)
    seconds: float
    vectors: int = 0
    message: str = ""
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class SuiteReport:
    target: str
    design: str
    results: tuple[CaseResult, ...]
    board: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def table(self) -> str:
        """A fixed-width pass/fail summary for the terminal."""
        width = max(len(r.name) for r in self.results) if self.results else 4
        lines = [f"HIL suite: {self.design} on {self.target} ({self.board.get('board', '?')}, "
                 f"{self.board.get('engine', self.board.get('backend', '?'))})",
                 f"{'case':<{width}}  result  vectors  seconds  note", "-" * (width + 40)]
        for r in self.results:
            lines.append(f"{r.name:<{width}}  {r.status.upper():<6}  {r.vectors:>7}  {r.seconds:>7.2f}  {r.message}")
        passed = sum(r.passed for r in self.results)
        lines.append("-" * (width + 40))
        lines.append(f"{passed}/{len(self.results)} passed, {sum(r.vectors for r in self.results)} vectors, "
                     f"{sum(r.seconds for r in self.results):.1f} s: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


@dataclass
class _Context:
    board: BoardClient
    out_dir: Path
    df: Dataflow
    rng: np.random.Generator
    large_batch: int
    vectors: int = 0
    hello: dict[str, Any] = field(default_factory=dict)
    reference: Mapping[str, np.ndarray] | None = None


def expected_outputs(df: Dataflow, q: np.ndarray) -> np.ndarray:
    """What the fabric must emit for integer inputs ``q`` (``bitaccurate.fabric_run``)."""
    return fabric_run(df, np.asarray(q, dtype=np.int64))


def _random_q(df: Dataflow, rng: np.random.Generator, batch: int) -> np.ndarray:
    if df.input.dtype == BIPOLAR:
        return rng.choice(np.array([-1, 1]), size=(batch, df.input.features))
    return rng.integers(df.input.qmin, df.input.qmax + 1, size=(batch, df.input.features))


def boundary_inputs(df: Dataflow) -> tuple[np.ndarray, np.ndarray]:
    """(integer rows, float rows) at the edges of the input range.

    Integers: all qmin, all qmax, all zero (when representable), qmin+1 / qmax-1, alternating
    extremes and one-hot qmax. Floats: rounding ties (k + 1/2) * scale around zero and the clip
    bounds, -0.0, values just past the clip bounds, the largest finite float32 of both signs and
    the smallest subnormal (NaN has no code and is not sent)."""
    n, lo, hi = df.input.features, df.input.qmin, df.input.qmax
    rows = [np.full(n, lo), np.full(n, hi), np.where(np.arange(n) % 2, lo, hi), np.where(np.arange(n) % 2, hi, lo)]
    if df.input.dtype != BIPOLAR:
        rows += [np.full(n, min(max(0, lo), hi)), np.full(n, min(lo + 1, hi)), np.full(n, max(hi - 1, lo))]
        rows += [np.where(np.arange(n) == i % n, hi, lo) for i in range(3)]
    ints = np.stack(rows).astype(np.int64)
    scale = df.input.scale.astype(np.float32)
    f32 = np.finfo(np.float32)
    float_rows = [np.full(n, -0.0, np.float32), np.full(n, f32.max, np.float32), np.full(n, -f32.max, np.float32),
                  np.full(n, f32.smallest_subnormal, np.float32), np.full(n, -f32.smallest_subnormal, np.float32)]
    for k in (-2, -1, 0, 1, lo, lo - 1, hi - 1, hi):
        float_rows.append((np.float32(k) + np.float32(0.5)) * scale)  # rounding ties (half to even)
    float_rows += [np.float32(hi + 3) * scale, np.float32(lo - 3) * scale, np.float32(hi) * scale]
    return ints, np.stack(float_rows).astype(np.float32)


def _check(ctx: _Context, reply: RunReply, q: np.ndarray, what: str) -> None:
    """Every RUN answer: inputs, integer outputs, floats and the hardware counters."""
    ctx.vectors += len(q)
    if reply.q is None or not np.array_equal(reply.q, q):
        raise CaseFailure(f"{what}: the board quantized the inputs differently from the simulator")
    expected = expected_outputs(ctx.df, q)
    if reply.out is None or reply.out.shape != expected.shape:
        raise CaseFailure(f"{what}: outputs shaped {None if reply.out is None else reply.out.shape}, expected {expected.shape}")
    if not np.array_equal(reply.out, expected):
        bad = np.argwhere(reply.out != expected)
        row, col = bad[0]
        raise CaseFailure(f"{what}: {len(bad)} of {expected.size} outputs differ; first at vector {row}, "
                          f"output {col}: board {reply.out[row, col]}, simulator {expected[row, col]}")
    if not ctx.df.argmax:
        y = dequantize_output(ctx.df, expected).reshape((len(q), *ctx.df.output_shape))
        if reply.y is None or not np.array_equal(reply.y, y):
            raise CaseFailure(f"{what}: dequantized float outputs differ from the simulator")
    inferences = reply.counters.get("inferences")
    padding = int(reply.counters.get("padding_vectors", 0))  # zero vectors a DMA driver adds
    if inferences is not None and inferences != len(q) + padding:
        raise CaseFailure(f"{what}: hardware counted {inferences} inferences for a batch of {len(q)}"
                          f"{f' + {padding} padding' if padding else ''} "
                          "(dropped or repeated vectors, or a counter that was not cleared)")
    if reply.latency_cycles is not None and (len(reply.latency_cycles) != len(q) or np.any(reply.latency_cycles <= 0)):
        raise CaseFailure(f"{what}: per-inference latency {reply.latency_cycles[:4]}... is not one positive count per vector")


def _run_q(ctx: _Context, q: np.ndarray, what: str) -> RunReply:
    reply = ctx.board.run(q=q)
    _check(ctx, reply, q, what)
    return reply


def _run_x(ctx: _Context, x: np.ndarray, what: str) -> RunReply:
    with np.errstate(over="ignore"):  # huge floats overflow x / scale to inf, which clips to qmax
        q = quantize_input(ctx.df.input, x.reshape(len(x), -1))
    reply = ctx.board.run(x.reshape((len(x), *ctx.df.input_shape)))
    _check(ctx, reply, q, what)
    return reply


def _golden_x(ctx: _Context, batch: int = 64) -> np.ndarray:
    # Spread over the whole quantizer range (and a little past it) so every code is exercised.
    span = np.float32(max(abs(ctx.df.input.qmin), abs(ctx.df.input.qmax)) + 1)
    rng = np.random.default_rng(1234)
    return (rng.uniform(-1.1, 1.1, size=(batch, ctx.df.input.features)) * span * ctx.df.input.scale).astype(np.float32)


# --- cases -------------------------------------------------------------------------------------

def case_hello(ctx: _Context) -> str:
    ctx.hello = ctx.board.hello()
    if ctx.hello.get("protocol") != 1:
        raise CaseFailure(f"agent speaks protocol {ctx.hello.get('protocol')}, this client speaks 1")
    return f"{ctx.hello.get('backend')} backend, qmlp {ctx.hello.get('qmlp')}"


def case_load(ctx: _Context) -> str:
    info = ctx.board.load(ctx.out_dir)
    if info.get("name") != ctx.df.name:
        raise CaseFailure(f"agent loaded design {info.get('name')!r}, expected {ctx.df.name!r}")
    return f"design {info.get('design')}, {info.get('files')} files"


def case_golden_vectors(ctx: _Context) -> str:
    _run_x(ctx, _golden_x(ctx), "golden float vectors")
    return "64 float vectors bit-exact"


def case_reference_vectors(ctx: _Context) -> str:
    """The user's own vectors (``x``; optional ``expected`` float reference outputs, e.g. from
    qonnx ``execute_onnx``, and ``y`` true labels): bit-exact against the simulator like every
    case, and reported against the reference and the labels."""
    assert ctx.reference is not None
    x = np.asarray(ctx.reference["x"], dtype=np.float32)
    reply = _run_x(ctx, x, "reference vectors")
    notes = [f"{len(x)} vectors bit-exact"]
    got = reply.out[:, 0] if ctx.df.argmax else np.argmax(reply.y.reshape(len(x), -1), axis=1)
    if "expected" in ctx.reference:
        expected = np.asarray(ctx.reference["expected"], dtype=np.float32).reshape(len(x), -1)
        agree = int(np.sum(got == np.argmax(expected, axis=1)))
        notes.append(f"argmax agrees with the reference on {agree}/{len(x)}")
        if not ctx.df.argmax:
            notes.append(f"max |y - reference| {float(np.max(np.abs(reply.y.reshape(len(x), -1) - expected))):.3g}")
    if "y" in ctx.reference:
        labels = np.asarray(ctx.reference["y"]).reshape(-1)
        notes.append(f"accuracy {np.mean(got == labels) * 100:.2f}%")
    return ", ".join(notes)


def case_random_vectors(ctx: _Context) -> str:
    _run_q(ctx, _random_q(ctx.df, ctx.rng, 256), "random integer vectors")
    return "256 integer vectors"


def case_boundary_values(ctx: _Context) -> str:
    ints, floats = boundary_inputs(ctx.df)
    _run_q(ctx, ints, "boundary integers")
    _run_x(ctx, floats, "boundary floats")
    return f"{len(ints)} integer + {len(floats)} float edge vectors"


def case_batch_sizes(ctx: _Context) -> str:
    sizes = sorted({1, 2, 3, 17, ctx.large_batch})
    for size in sizes:
        _run_q(ctx, _random_q(ctx.df, ctx.rng, size), f"batch of {size}")
    return "sizes " + ",".join(map(str, sizes))


def case_back_to_back(ctx: _Context) -> str:
    a, b = _random_q(ctx.df, ctx.rng, 9), _random_q(ctx.df, ctx.rng, 5)
    first = _run_q(ctx, a, "run A")
    _run_q(ctx, b, "run B right after A")
    again = _run_q(ctx, a, "run A again after B")
    if not np.array_equal(first.out, again.out):
        raise CaseFailure("the same inputs gave different outputs after another batch (stale state)")
    single = [_run_q(ctx, a[i:i + 1], f"vector {i} of A alone").out for i in range(3)]
    if not np.array_equal(np.concatenate(single), first.out[:3]):
        raise CaseFailure("vectors run one at a time differ from the same vectors in a batch")
    return "A, B, A and singles agree"


def case_reset_and_rerun(ctx: _Context) -> str:
    ctx.board.reset()
    _run_x(ctx, _golden_x(ctx, 16), "after RESET")
    return "outputs unchanged after RESET"


def case_reload_and_rerun(ctx: _Context) -> str:
    ctx.board.load(ctx.out_dir)
    _run_x(ctx, _golden_x(ctx, 16), "after reload")
    return "outputs unchanged after LOAD again"


def case_bench(ctx: _Context) -> str:
    result = ctx.board.bench(warmup=1, iterations=4, batch=8, seed=7)
    if len(result.wall_s) != 4 or not np.all(result.wall_s > 0):
        raise CaseFailure(f"BENCH returned {len(result.wall_s)} timings {result.wall_s}, expected 4 positive")
    padding = int(result.info.get("padding_vectors", 0))
    if np.any((result.inferences >= 0) & (result.inferences != 8 + padding)):
        raise CaseFailure(f"BENCH counted {result.inferences} inferences per call, expected 8")
    if result.cycles is not None:
        if np.any(result.cycles <= 0):
            raise CaseFailure(f"BENCH cycle counts {result.cycles} not positive")
        return f"median {np.median(result.cycles):.0f} cycles / batch of 8 ({np.median(result.modelled_s) * 1e6:.2f} us modelled)"
    return f"median {np.median(result.wall_s) * 1e3:.3f} ms / batch of 8"


def case_power(ctx: _Context) -> str:
    rails = (ctx.hello or ctx.board.hello()).get("rails") or []
    if not rails:
        try:
            ctx.board.power("start")
        except RemoteError as error:
            if error.code != "NO_RAILS":
                raise CaseFailure(f"POWER on a board without rails refused with {error.code}, expected NO_RAILS") from None
            return "no rails: POWER refused cleanly"
        raise CaseFailure("POWER start succeeded on a board that reports no rails")
    ctx.board.power("start", label="idle")
    time.sleep(0.5)
    ctx.board.power("mark", label="active")
    ctx.board.bench(warmup=0, iterations=20, batch=64)
    trace = ctx.board.power("stop")
    samples = trace.header.get("samples", 0)
    if samples <= 0:
        raise CaseFailure("POWER stop returned an empty trace")
    return f"{samples} samples over rails {', '.join(rails)}"


CASES: tuple[tuple[str, Callable[[_Context], str]], ...] = (
    ("hello", case_hello), ("load", case_load), ("golden_vectors", case_golden_vectors),
    ("random_vectors", case_random_vectors), ("boundary_values", case_boundary_values),
    ("batch_sizes", case_batch_sizes), ("back_to_back", case_back_to_back),
    ("reset_and_rerun", case_reset_and_rerun), ("reload_and_rerun", case_reload_and_rerun),
    ("bench", case_bench), ("power", case_power),
)


def load_vectors(path: str | Path, df: Dataflow) -> dict[str, np.ndarray]:
    """An .npz with ``x`` (float inputs, one row per sample) and optionally ``expected`` and
    ``y``, checked against the design; ConfigError naming the file and key otherwise."""
    from ..errors import ConfigError

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files if k in ("x", "expected", "y")}
    except (OSError, ValueError) as error:
        raise ConfigError(f"--vectors {path}: not a readable .npz ({error})") from None
    if "x" not in arrays:
        raise ConfigError(f"--vectors {path}: no array 'x' (float inputs, one row per sample)")
    x = arrays["x"]
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != df.input.features or x.dtype.kind != "f":
        raise ConfigError(f"--vectors {path}: 'x' {x.dtype} {x.shape} is not floats shaped "
                          f"(samples, {', '.join(map(str, df.input_shape))})")
    finite_floats(x, f"--vectors {path}: 'x'")  # qmlp's one rule: NaN and infinities are refused
    for key in ("expected", "y"):
        if key in arrays and len(arrays[key]) != len(x):
            raise ConfigError(f"--vectors {path}: '{key}' has {len(arrays[key])} rows but 'x' has {len(x)}")
    return arrays


def run_suite(board: BoardClient, out_dir: str | Path, *, target: str = "?", seed: int = 0,
              large_batch: int = 1000, progress: Callable[[str], None] | None = None,
              vectors: Mapping[str, np.ndarray] | None = None) -> SuiteReport:
    """Run every case in ``CASES`` (plus ``reference_vectors`` when ``vectors`` are given, see
    ``load_vectors``) on ``board`` with the design in ``out_dir``; never raises for a failing
    case (it is recorded), so the report always covers the whole suite."""
    out_dir = Path(out_dir)
    from ..build import Build

    df = Build.open(out_dir, folded=False).dataflow
    ctx = _Context(board=board, out_dir=out_dir, df=df, rng=np.random.default_rng(seed), large_batch=large_batch,
                   reference=vectors)
    cases = list(CASES)
    if vectors is not None:
        cases.insert(3, ("reference_vectors", case_reference_vectors))
    results = []
    for name, case in cases:
        before, start = ctx.vectors, time.perf_counter()
        try:
            note, status, detail = case(ctx), "pass", ""
        except CaseFailure as failure:
            note, status, detail = str(failure), "fail", traceback.format_exc()
        except HilError as error:
            note, status, detail = str(error), "error", traceback.format_exc()
        except Exception as error:  # a malformed answer (or a bug) fails this case, not the suite
            note, status, detail = f"{type(error).__name__}: {error}", "error", traceback.format_exc()
        result = CaseResult(name=name, status=status, seconds=time.perf_counter() - start,
                            vectors=ctx.vectors - before, message=note, detail=detail)
        results.append(result)
        if progress is not None:
            progress(f"  [{len(results):>2}/{len(cases)}] {name:<18} {status.upper():<5} {result.seconds:6.2f} s")
    return SuiteReport(target=target, design=df.name, results=tuple(results), board=ctx.hello)
