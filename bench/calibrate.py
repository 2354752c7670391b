"""Calibrate the resource model (qmlp/hwgen/estimate.py) against Yosys on a generated sweep.

Every design of the sweep is a small random Dataflow (topology, weight and input types, PE/SIMD,
padding, pipeline depth and hence ROM storage vary) emitted by qmlp and synthesized whole
(``qmlp_top`` with converters, FIFOs and the AXI-Lite control) by Yosys ``synth_xilinx`` for one
family. For each design the plan's structural features (``estimate.Features``) and Yosys' LUT
(logic + LUTRAM), FF, BRAM and ``ltp`` depth are recorded; LUT and FF coefficients are fitted by
a minimax linear program (non-negative coefficients, smallest worst relative error) on the training part (every design whose index is not a multiple of
``HOLDOUT``), and the held-out part checks the band.

    python bench/calibrate.py --family xcup              # sweep + fit (tens of minutes)
    python bench/calibrate.py --family xc7 --fit-only    # refit from the recorded sweep

Writes ``bench/results/calibration_<family>.json`` (the sweep: design specs and Yosys results)
and ``qmlp/hwgen/calibration/<family>.json`` (the coefficients the estimator loads).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qmlp.errors import QmlpError  # noqa: E402
from qmlp.hwgen import estimate as est_mod  # noqa: E402
from qmlp.hwgen.emit import emit_rtl  # noqa: E402
from qmlp.hwgen.fold import parallelism_options  # noqa: E402
from qmlp.hwgen.plan import build_plan  # noqa: E402
from qmlp.ir import Dataflow  # noqa: E402
from qmlp.testing import SWEEP_KINDS, sweep_dataflow  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HOLDOUT = 4  # every 4th design is held out of the fit
CHECK_DESIGNS = 8
MARGIN_QUANTILE = 0.75  # held-out designs recorded with the coefficients for tests/hwgen/test_calibration.py
BAND = 0.25

TOPOLOGIES = ((16, 8), (24, 12, 4), (40, 32, 4), (32, 64, 8), (64, 16, 16, 3), (48, 24), (12, 40, 10), (128, 48, 4))
KINDS = tuple(SWEEP_KINDS)
FIRST_PARALLEL = 36  # designs from this index on come from _parallel_spec
PARALLEL_TOPOLOGIES = ((16, 12, 4), (24, 16), (32, 8, 4), (20, 20, 3), (12, 24, 6))


@dataclass(frozen=True)
class Spec:
    """One design of the sweep, rebuildable from these fields alone."""

    seed: int
    widths: tuple[int, ...]
    kind: str
    foldings: tuple[tuple[int, int, int, int, int], ...]  # (pe, simd, pad_out, pad_in, levels)

    def as_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "widths": list(self.widths), "kind": self.kind,
                "foldings": [list(f) for f in self.foldings]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "Spec":
        return Spec(int(data["seed"]), tuple(data["widths"]), data["kind"], tuple(tuple(f) for f in data["foldings"]))


def build(spec: Spec) -> Dataflow:
    """The folded Dataflow of a sweep design (deterministic in ``spec``)."""
    return sweep_dataflow(spec.seed, spec.widths, spec.kind, spec.foldings)


def sweep_specs(count: int, seed: int = 0) -> list[Spec]:
    """``count`` designs: every topology and weight kind, random legal foldings that range from
    PE = SIMD = 1 to fully parallel (so ROMs are constants, LUTs or BRAM), levels 1-4."""
    rng = np.random.default_rng(seed)
    specs = []
    for n in range(count):
        if n >= FIRST_PARALLEL:  # a second batch: many fully parallel (constant-weight) layers
            specs.append(_parallel_spec(n, np.random.default_rng(seed + n)))
            continue
        widths = TOPOLOGIES[n % len(TOPOLOGIES)]
        kind = KINDS[(n // len(TOPOLOGIES) + n) % len(KINDS)]
        foldings = []
        for mw, mh in zip(widths[:-1], widths[1:]):
            pes, simds = parallelism_options(mh), parallelism_options(mw)
            # bias toward few lanes (BRAM-deep ROMs) and toward full parallelism, both ends matter
            pe, pad_out = pes[min(len(pes) - 1, int(rng.integers(0, len(pes))) // (1 + int(rng.integers(0, 3))))]
            simd, pad_in = simds[int(rng.integers(0, len(simds)))]
            if rng.random() < 0.15 and mw * mh <= 640:  # fully parallel, small enough for a quick Yosys run
                pe, pad_out, simd, pad_in = mh, 0, mw, 0
            while pe * simd > 160:  # keep every design a few-minute Yosys run on a shared machine
                simd, pad_in = simds[max(0, simds.index((simd, pad_in)) - 1)]
                if simd == 1:
                    pe, pad_out = pes[max(0, pes.index((pe, pad_out)) - 1)]
            foldings.append((pe, simd, pad_out, pad_in, int(rng.integers(1, 5))))
        specs.append(Spec(1000 + n, widths, kind, tuple(foldings)))
    return specs


def _parallel_spec(n: int, rng: np.random.Generator) -> Spec:
    widths = PARALLEL_TOPOLOGIES[n % len(PARALLEL_TOPOLOGIES)]
    kind = KINDS[n % len(KINDS)]
    foldings = []
    for mw, mh in zip(widths[:-1], widths[1:]):
        if rng.random() < 0.6:
            foldings.append((mh, mw, 0, 0, int(rng.integers(1, 5))))
        else:
            pe, pad_out = parallelism_options(mh)[int(rng.integers(0, len(parallelism_options(mh))))]
            foldings.append((pe, mw, pad_out, 0, int(rng.integers(1, 5))))
    return Spec(1000 + n, widths, kind, tuple(foldings))


def features_of(df: Dataflow) -> tuple[list[float], float]:
    """(summed feature vector of the design, BRAM36 of the plan)."""
    hw = build_plan(df)
    total = est_mod.control_features(hw)
    for stage in hw.stages:
        total += est_mod.stage_features(stage)
    for plan, layer in zip(hw.layers, df.layers):
        total += est_mod.layer_features(plan, layer.weights)
    bram = sum(est_mod.estimate_layer(p, l.weights).bram36 for p, l in zip(hw.layers, df.layers))
    return total.vector(), bram


def synth_one(spec: Spec, family: str, timeout: float) -> dict[str, Any]:
    from qmlp.hwgen.synth import synthesize

    df = build(spec)
    with tempfile.TemporaryDirectory(prefix="qmlp-cal-") as tmp:
        emit_rtl(df, Path(tmp))
        result = synthesize(tmp, family=family, timeout=timeout)
    return {"lut": result.lut, "lutram": result.lutram, "ff": result.ff, "bram36": result.bram36 + result.bram18 / 2,
            "dsp": result.dsp, "lut_levels": result.lut_levels, "carry_cells": result.carry_cells,
            "fmax_estimate_mhz": result.fmax_estimate_mhz, "seconds": result.seconds}


# Physical priors: a hierarchical (non-flattened) Yosys run of sweep design 7 puts the SIMD adder
# trees at 1.28 LUT per adder bit; unconstrained, the fit trades the trees against correlated
# features and then prices tree-dominated designs (wide SIMD, small products) far too low.
LUT_PRIORS = {"adder_bits": (1.0, 1.5)}


def minimax_fit(x: np.ndarray, y: np.ndarray, priors: dict[str, tuple[float, float]] | None = None,
                names: tuple[str, ...] = ()) -> tuple[np.ndarray, float]:
    """Non-negative coefficients c minimising max |x c / y - 1| (a linear program), each within
    its prior range when given: the band the model must hold is a relative one, so the fit
    minimises exactly that."""
    from scipy.optimize import linprog

    n, k = x.shape
    a = x / y[:, None]
    cost = np.r_[np.zeros(k), 1.0]
    a_ub = np.r_[np.c_[a, -np.ones(n)], np.c_[-a, -np.ones(n)]]
    b_ub = np.r_[np.ones(n), -np.ones(n)]
    bounds = [(priors or {}).get(name, (0, None)) for name in (names or ("",) * k)] + [(0, None)]
    result = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds)
    return result.x[:k], float(result.x[k])


def fit(rows: list[dict[str, Any]], family: str, base: str | None = None) -> dict[str, Any]:
    """Minimax fit of LUT (logic + LUTRAM) and FF on the training rows; with ``base`` (a family
    with a full calibration) only one scale factor each on top of that family's coefficients,
    the robust choice for a family with few designs."""
    train = [r for r in rows if r["index"] % HOLDOUT and "yosys" in r]
    x = np.array([features_of(build(Spec.from_json(r["spec"])))[0] for r in train])
    names = est_mod.FEATURE_NAMES
    coeffs = {}
    for key, target in (("lut", lambda y: y["lut"] + y["lutram"]), ("ff", lambda y: y["ff"])):
        y = np.array([target(r["yosys"]) for r in train], dtype=float)
        if base is None:
            solution, _ = minimax_fit(x, y, LUT_PRIORS if key == "lut" else None, names)
        else:
            base_coeffs = est_mod.load_calibration(base)[key]
            vector = np.array([base_coeffs.get(n, 0.0) for n in names])
            scale, _ = minimax_fit((x @ vector)[:, None], y)
            solution = vector * scale[0]
        coeffs[key] = {n: round(float(c), 4) for n, c in zip(names, solution) if c > 1e-6}
    held = [r for r in rows if r["index"] % HOLDOUT == 0 and "yosys" in r]
    check = [{"spec": r["spec"], "yosys": {"lut_sites": r["yosys"]["lut"] + r["yosys"]["lutram"], "ff": r["yosys"]["ff"],
                                           "bram36": r["yosys"]["bram36"],
                                           "fmax_estimate_mhz": r["yosys"]["fmax_estimate_mhz"]}}
             for r in held[:CHECK_DESIGNS]]
    return {"family": family, "lut": coeffs["lut"], "ff": coeffs["ff"],
            "source": f"bench/calibrate.py --family {family}{f' --base {base}' if base else ''}: minimax fit "
                      f"{f'of one scale on the {base} coefficients ' if base else ''}on {len(train)} Yosys "
                      f"synth_xilinx runs (held out every {HOLDOUT}th design)",
            "timing": timing_margin(train, family), "check": check}


def timing_margin(rows: list[dict[str, Any]], family: str) -> dict[str, Any]:
    """The delay model's calibration: ``ns_per_adder_level`` such that the path model's critical
    period reaches Yosys' depth-based period on MARGIN_QUANTILE of the training designs whose
    critical path is an adder tree, then ``margin_ns`` for all designs likewise."""
    from qmlp.hwgen.synth import fmax_estimate
    from qmlp.hwgen.timing import design_timing

    gaps = []
    for r in rows:
        critical = design_timing(build_plan(build(Spec.from_json(r["spec"]))), family).critical
        model = 1000.0 / fmax_estimate(family, critical.lut_levels, critical.carry_cells)
        gaps.append((1000.0 / r["yosys"]["fmax_estimate_mhz"] - model, critical.adders))
    per_level = max(0.0, float(np.quantile([g / a for g, a in gaps if a >= 3] or [0.0], MARGIN_QUANTILE)))
    margin = max(0.0, float(np.quantile([g - per_level * a for g, a in gaps], MARGIN_QUANTILE)))
    return {"margin_ns": round(margin, 3), "ns_per_adder_level": round(per_level, 3),
            "source": f"{MARGIN_QUANTILE:.0%} quantiles of (Yosys depth period - model period) over "
                      f"{len(gaps)} designs (per adder level where the critical path is a tree of >= 3)"}


def check(rows: list[dict[str, Any]], family: str) -> list[dict[str, Any]]:
    """Estimate / Yosys ratios of every recorded design under the current coefficients."""
    from qmlp.hwgen.timing import design_timing

    est_mod.coefficients.cache_clear()
    est_mod.load_calibration.cache_clear()
    out = []
    for r in rows:
        if "yosys" not in r:
            continue
        df = build(Spec.from_json(r["spec"]))
        e = est_mod.estimate(df, family)
        y = r["yosys"]
        timing = design_timing(build_plan(df), family)
        out.append({"index": r["index"], "held_out": r["index"] % HOLDOUT == 0,
                    "lut_ratio": e.lut / max(1, y["lut"] + y["lutram"]), "ff_ratio": e.ff / max(1, y["ff"]),
                    "bram_est": e.bram36, "bram_yosys": y["bram36"],
                    "fmax_est": timing.fmax_mhz, "fmax_yosys_depth": y["fmax_estimate_mhz"]})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("xcup", "xc7"), required=True)
    parser.add_argument("--designs", type=int, default=48)
    parser.add_argument("--fit-only", action="store_true", help="refit from the recorded sweep")
    parser.add_argument("--indices", type=int, nargs="*", help="synthesize only these sweep designs")
    parser.add_argument("--base", choices=("xcup", "xc7"), help="fit one scale on this family's coefficients")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    data_path = RESULTS / f"calibration_{args.family}.json"
    rows = json.loads(data_path.read_text())["designs"] if data_path.exists() else []
    if not args.fit_only:
        done = {r["index"] for r in rows if "yosys" in r}
        for index, spec in enumerate(sweep_specs(args.designs)):
            if index in done or (args.indices is not None and index not in args.indices):
                continue
            start = time.perf_counter()
            row: dict[str, Any] = {"index": index, "spec": spec.as_json()}
            try:
                row["yosys"] = synth_one(spec, args.family, args.timeout)
            except QmlpError as error:
                row["error"] = str(error)[:300]
            rows = [r for r in rows if r["index"] != index] + [row]
            rows.sort(key=lambda r: r["index"])
            RESULTS.mkdir(parents=True, exist_ok=True)
            data_path.write_text(json.dumps({"family": args.family, "designs": rows}, indent=1) + "\n")
            print(f"[{index}] {spec.widths} {spec.kind} {spec.foldings}: {time.perf_counter() - start:.0f} s "
                  f"{row.get('yosys', row.get('error'))}", flush=True)
    coeffs = fit(rows, args.family, args.base)
    out = est_mod.CALIBRATION_DIR / f"{args.family}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(coeffs, indent=1) + "\n")
    # record what the fitted model says about each held-out check design (the test pins it)
    est_mod.coefficients.cache_clear()
    est_mod.load_calibration.cache_clear()
    for record in coeffs["check"]:
        e = est_mod.estimate(build(Spec.from_json(record["spec"])), args.family)
        y = record["yosys"]
        record["estimate"] = {"lut_sites": e.lut, "ff": e.ff, "bram36": e.bram36}
        record["within_band"] = abs(e.lut / y["lut_sites"] - 1) <= BAND and abs(e.ff / y["ff"] - 1) <= BAND
    out.write_text(json.dumps(coeffs, indent=1) + "\n")
    report = check(rows, args.family)
    for r in report:
        flag = "" if abs(r["lut_ratio"] - 1) <= BAND and abs(r["ff_ratio"] - 1) <= BAND else "  OUT OF BAND"
        print(f"{r['index']:3d} {'held-out' if r['held_out'] else 'train   '} LUT x{r['lut_ratio']:.2f} "
              f"FF x{r['ff_ratio']:.2f} BRAM {r['bram_est']:g}/{r['bram_yosys']:g} "
              f"fmax {r['fmax_est']:.0f}/{r['fmax_yosys_depth']:.0f}{flag}")
    held = [r for r in report if r["held_out"]]
    worst = max((max(abs(r["lut_ratio"] - 1), abs(r["ff_ratio"] - 1)) for r in held), default=float("nan"))
    print(f"wrote {out}; held-out designs: {len(held)}, worst LUT/FF deviation {worst:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
