"""Calibrate the resource model (qmlp/hwgen/estimate.py) per unit against Yosys.

The sweep (``DESIGNS``) is a fixed list of folded designs that covers the benchmarks' range: the
seed topology 40-256-128-64-32-4 with INT2 and TERNARY weights folded for 10 k to 5 M
inferences/s (PE-heavy and SIMD-heavy), FINN's UNSW-NB15 MLP 600-64-64-64-1 with bipolar inputs
(SIMD up to 600), ternary-weight 8-bit-activation MLPs (the binary-search threshold unit) and
small random designs (BIPOLAR, INT4, block-RAM ROMs), on both families. Each design is emitted
by qmlp and synthesized by Yosys ``synth_xilinx`` *keeping the hierarchy*
(``qmlp.hwgen.synth.synthesize_units``): every instance of ``qmlp_top`` -- a layer unit with
its ROMs, adder trees and threshold units, a FIFO, a width converter, the control, a CONST
layer's adder graph (counted with its shell) -- is counted out of context. Each instance is one
row of the fit: the plan's structural features of that unit (``estimate.layer_features`` /
``stage_features`` / ``control_features``) against its Yosys LUT sites (logic + LUTRAM) and FF.
The features priced by their own measurements (``estimate.FIXED_FEATURES``: the CONST layer's
factors, qmlp_popcount's sweep) are taken off the counts; the rest are fitted by a linear
program that minimises the worst relative error over the training rows plus their mean
(non-negative coefficients within physical ranges, ``PRIORS``).

Designs marked ``held_out`` are left out of the fit and synthesized flattened only (as
``qmlp compile --synth`` does): the estimate must land within +-25% of those whole-design
counts, BRAM exact; they become the fixed check set of tests/hwgen/test_calibration.py.

    python bench/calibrate.py                      # synthesize what is missing, fit, check
    python bench/calibrate.py --only NAME ...      # synthesize these designs (if missing), fit
    python bench/calibrate.py --fit-only           # refit from the recorded sweep

The whole list takes hours on 2 cores (the 20-40 k LUT designs take 10+ minutes each); the
recorded sweep is what ``calibration_units.json`` holds (its ``command`` says which runs), and
designs without a record are left out of the fit. Writes ``bench/results/calibration_units.json``
(designs and Yosys counts per instance), ``qmlp/hwgen/calibration/<family>.json`` (the
coefficients the estimator loads) and the calibration paragraph of BENCHMARKS.md.
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
from qmlp.hwgen.emit import emit_rtl, graph_instance, instance_name  # noqa: E402
from qmlp.hwgen.plan import HardwarePlan, Unit, build_plan  # noqa: E402
from qmlp.ir import Dataflow  # noqa: E402
from qmlp.testing import sweep_dataflow  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "calibration_units.json"
BAND = 0.25
MIN_ROW = 300  # relative errors of small units are taken against this many LUT/FF: they matter little in a design
TOTAL_WEIGHT = 2.0  # a design total's relative error counts this much more than one unit's
CONTROL = "control"  # the rows of qmlp_control, both beat counters and qmlp_top's own glue
SEED = (40, 256, 128, 64, 32, 4)
UNSW = (600, 64, 64, 64, 1)


@dataclass(frozen=True)
class Design:
    """One design of the sweep, rebuildable from these fields alone. ``folds``: (PE, SIMD,
    levels_per_stage) per layer; pads are the smallest that make PE and SIMD divide."""

    name: str
    family: str
    kind: str  # a qmlp.testing.SWEEP_KINDS key
    widths: tuple[int, ...]
    folds: tuple[tuple[int, int, int], ...]
    held_out: bool = False
    seed: int = 7

    def spec(self) -> dict[str, Any]:
        """The ``qmlp.testing.sweep_dataflow`` arguments (what the check records store)."""
        foldings = [[pe, simd, (-mh) % pe, (-mw) % simd, levels] for (pe, simd, levels), mw, mh
                    in zip(self.folds, self.widths[:-1], self.widths[1:])]
        return {"seed": self.seed, "widths": list(self.widths), "kind": self.kind, "foldings": foldings}

    def dataflow(self) -> Dataflow:
        spec = self.spec()
        return sweep_dataflow(spec["seed"], self.widths, self.kind, tuple(map(tuple, spec["foldings"])))


DESIGNS = (
    # in the order they are synthesized: the benchmark-range units first, then the rest
    Design("seed-int2-1M-pe", "xcup", "int2", SEED, ((4, 14, 2), (128, 4, 2), (64, 2, 1), (32, 1, 1), (1, 1, 1))),
    Design("unsw-simd600", "xcup", "int2-bin", UNSW, ((1, 600, 4), (4, 16, 4), (4, 16, 4), (1, 1, 1))),
    Design("seed-int2-1M-bal", "xcup", "int2", SEED, ((4, 14, 2), (6, 29, 2), (4, 11, 2), (2, 6, 1), (1, 1, 1))),
    Design("seed-int2-100k-xc7", "xc7", "int2", SEED, ((4, 2, 1), (2, 9, 1), (2, 4, 1), (1, 2, 1), (1, 1, 1))),
    Design("ternary-a8-small", "xcup", "ternary-a8", (32, 64, 32, 10), ((2, 8, 2), (8, 8, 2), (1, 4, 1)),
           held_out=True),
    Design("small-int2-par", "xcup", "int2", (24, 16, 4), ((16, 24, 3), (4, 16, 2)), held_out=True),
    Design("small-ternary-a4", "xcup", "ternary-a4", (40, 32, 8), ((32, 40, 2), (2, 4, 2))),
    Design("small-int4", "xcup", "int4", (48, 32, 8), ((2, 6, 2), (8, 32, 2))),
    Design("unsw-simd300", "xc7", "int2-bin", UNSW, ((2, 300, 3), (1, 64, 3), (1, 64, 3), (1, 64, 3)), held_out=True),
    Design("seed-int2-100k", "xcup", "int2", SEED, ((4, 2, 1), (2, 9, 2), (2, 4, 2), (1, 2, 1), (1, 1, 1))),
    Design("seed-int2-1M-simd", "xcup", "int2", SEED, ((2, 40, 2), (4, 64, 2), (2, 32, 2), (1, 16, 2), (1, 1, 1))),
    Design("seed-ternary-5M-simd", "xcup", "ternary", SEED, ((8, 40, 2), (8, 128, 2), (4, 64, 2), (2, 32, 2), (1, 8, 2))),
    Design("ternary-a8-mid", "xcup", "ternary-a8", (64, 128, 64, 10), ((8, 16, 2), (4, 32, 2), (1, 8, 2))),
    Design("small-bipolar", "xcup", "bipolar", (64, 48, 16, 4), ((6, 8, 2), (2, 48, 3), (4, 4, 1))),
    Design("seed-int2a2-1M-mid", "xcup", "int2-a2", SEED, ((8, 20, 2), (16, 16, 2), (8, 16, 2), (4, 8, 2), (1, 4, 1)),
           held_out=True),
    Design("unsw-1M", "xc7", "int2-bin", UNSW, ((1, 600, 4), (4, 16, 4), (4, 16, 4), (1, 1, 1))),
    Design("small-bram", "xcup", "int2", (128, 96, 32, 4), ((1, 2, 1), (1, 1, 1), (1, 1, 1))),
    Design("seed-int2-5M-pe", "xcup", "int2", SEED, ((7, 40, 2), (13, 64, 2), (64, 4, 2), (32, 2, 1), (4, 1, 1))),
    Design("seed-ternary-5M-par", "xcup", "ternary", SEED, ((8, 40, 2), (8, 128, 2), (8, 32, 2), (32, 64, 2), (4, 32, 2))),
    Design("seed-ternary-1M-pe", "xcup", "ternary", SEED, ((4, 14, 2), (128, 4, 2), (64, 2, 1), (32, 1, 1), (1, 1, 1)),
           held_out=True),
    Design("seed-ternary-10k", "xcup", "ternary", SEED, ((4, 1, 1), (1, 2, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1))),
    Design("unsw-pe", "xcup", "int2-bin", UNSW, ((16, 40, 2), (16, 4, 2), (8, 8, 2), (1, 4, 1))),
    Design("small-int4-xc7", "xc7", "int4", (48, 32, 8), ((2, 6, 1), (8, 32, 1)), held_out=True),
)


def unit_features(df: Dataflow) -> dict[str, list[float]]:
    """Instance name in qmlp_top -> the structural features the estimator prices it by (the
    control row: qmlp_control, the beat counters and qmlp_top's own glue)."""
    hw = build_plan(df)
    rows = {CONTROL: est_mod.control_features(hw).vector()}
    for stage in hw.stages:
        if stage.layer is not None:
            features = est_mod.layer_features(hw.layers[stage.layer], df.layers[stage.layer].weights)
        else:
            features = est_mod.stage_features(stage)
        rows[instance_name(hw, stage)] = features.vector()
    return rows


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in {*a, *b}}


def unit_counts(hw: HardwarePlan, instances: dict[str, dict[str, int]],
                top_local: dict[str, int]) -> dict[str, dict[str, int]]:
    """Yosys counts per row of ``unit_features`` (LUT sites = logic LUT + LUTRAM); a CONST layer's
    row is its shell and its adder graph."""
    graphs = {graph_instance(p): f"{p.ident}_unit" for p in hw.layers if p.unit is Unit.CONST}
    rows = {CONTROL: dict(top_local)}
    for name, counts in instances.items():
        row = CONTROL if name in ("control", "in_beats", "out_beats") else graphs.get(name, name)
        rows[row] = _add(rows.get(row, {}), counts)
    return {name: {"lut_sites": c["lut_sites"], "ff": c["ff"], "bram36": c["bram36"] + c["bram18"] / 2}
            for name, c in rows.items()}


def synth_design(design: Design, flat: bool, timeout: float) -> dict[str, Any]:
    from qmlp.hwgen.synth import synthesize, synthesize_units

    with tempfile.TemporaryDirectory(prefix="qmlp-cal-") as tmp:
        emit_rtl(design.dataflow(), Path(tmp))
        if flat:
            r = synthesize(tmp, family=design.family, timeout=timeout)
            return {"lut_sites": r.lut_sites, "ff": r.ff, "bram36": r.bram36 + r.bram18 / 2,
                    "fmax_estimate_mhz": r.fmax_estimate_mhz, "seconds": r.seconds, "yosys": r.yosys}
        u = synthesize_units(tmp, family=design.family, timeout=timeout)
        return {"units": unit_counts(build_plan(design.dataflow()), dict(u.instances), dict(u.top_local)),
                "seconds": u.seconds, "yosys": u.yosys}


# Physical ranges of the coefficients (per feature unit), so that correlated features cannot
# trade against each other: a 64-word LUT ROM is one LUT6 per bit (Yosys xcup: a 64 x 1200-bit
# qmlp_rom alone is 1,200 LUT6 + 1,200 FDRE; a wider range let the fit price ROMs at ~1.9 to
# absorb UNSW fc0's popcount unit, which Yosys builds ~2.5 k LUT larger than its popcount and ROM
# measured alone -- a gap the model does not explain yet); a register bit is one FF and
# (clock enables live in the FF) almost no LUT; an adder bit is a LUT plus its carry share; a 2:1
# select bit at most one LUT (the width converters' rows say ~1; left free, the fit used it to
# absorb MVAU residue and priced a converter 1.35x its netlist).
PRIORS = {
    "lut": {"rom_luts": (0.9, 1.3), "adder_bits": (0.9, 1.8),
            "small_product_bits": (0.3, 1.5), "product_bits": (0.5, 3.0), "reg_bits": (0.0, 0.3),
            "compare_bits": (0.3, 2.5), "mux_bits": (0.5, 1.2)},
    "ff": {"reg_bits": (0.85, 1.15)},
}


def minimax_fit(x: np.ndarray, y: np.ndarray, priors: dict[str, tuple[float, float]] | None = None,
                floor: float = MIN_ROW, weight: np.ndarray | None = None, relative_to: np.ndarray | None = None,
                names: tuple[str, ...] = est_mod.FITTED_FEATURES) -> tuple[np.ndarray, float]:
    """Non-negative coefficients c (each within its ``priors`` range, by feature name in
    ``names``, one per column of x) minimising the worst weighted relative error
    e_i = weight_i * |x_i c - y_i| / max(relative_to_i, floor) (``relative_to`` defaults to y) plus
    the mean e_i (a linear program). The band the model must hold is a relative one, so the worst
    error leads; the mean picks, among the many coefficient sets with the same worst row, the one
    that fits the other rows too. Returns (c, worst e_i)."""
    from scipy.optimize import linprog

    n, k = x.shape
    scale = (np.ones(n) if weight is None else weight) / np.maximum(y if relative_to is None else relative_to, floor)
    a = x * scale[:, None]
    b = y * scale
    # variables: c (k), e (n), t; |a c - b| <= e <= t
    cost = np.r_[np.zeros(k), np.full(n, 1.0 / n), 1.0]
    eye = np.eye(n)
    a_ub = np.r_[np.c_[a, -eye, np.zeros(n)], np.c_[-a, -eye, np.zeros(n)], np.c_[np.zeros((n, k)), eye, -np.ones(n)]]
    b_ub = np.r_[b, -b, np.zeros(n)]
    bounds = [(priors or {}).get(name, (0, None)) for name in names[:k]] + [(0, None)] * (n + 1)
    result = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds)
    return result.x[:k], float(result.x[-1])


def training_rows(records: dict[str, Any], family: str) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """(features, {"lut": .., "ff": ..}, row labels) of every unit of the family's training designs
    and of each such design as a whole (label ``<design>/total``)."""
    x, y, labels = [], {"lut": [], "ff": []}, []
    for design in DESIGNS:
        units = records.get(design.name, {}).get("units", {}).get("units")
        if design.family != family or design.held_out or not units:
            continue
        features = unit_features(design.dataflow())
        for name, counts in units.items():
            x.append(features[name])
            y["lut"].append(counts["lut_sites"])
            y["ff"].append(counts["ff"])
            labels.append(f"{design.name}/{name}")
        # the whole design too: the band is defined on totals, where unit errors must not pile up
        x.append(list(np.sum([features[name] for name in units], axis=0)))
        y["lut"].append(sum(c["lut_sites"] for c in units.values()))
        y["ff"].append(sum(c["ff"] for c in units.values()))
        labels.append(f"{design.name}/total")
    return np.array(x, dtype=float), {k: np.array(v, dtype=float) for k, v in y.items()}, labels


def fit(records: dict[str, Any], family: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-unit minimax fit of LUT sites and FF for ``family``; with ``base`` (another family's
    fit) only one scale each on top of its coefficients, the robust choice for a family with few
    designs. The held-out designs' flattened records become the ``check`` set."""
    x_all, y, labels = training_rows(records, family)
    # the fixed factors' share (estimate.FIXED_FEATURES) comes off the counts; the rest is fitted
    fixed = est_mod.fixed_coefficients(family)
    rows = [est_mod.Features(**dict(zip(est_mod.FEATURE_NAMES, row))) for row in x_all]
    fixed_part = {"lut": np.array([fixed.lut_of(f) for f in rows]), "ff": np.array([fixed.ff_of(f) for f in rows])}
    names = est_mod.FITTED_FEATURES
    x = x_all[:, [est_mod.FEATURE_NAMES.index(n) for n in names]]
    coeffs, worst = {}, {}
    for key in ("lut", "ff"):
        weight = np.array([TOTAL_WEIGHT if label.endswith("/total") else 1.0 for label in labels])
        if base is None:
            solution, worst[key] = minimax_fit(x, y[key] - fixed_part[key], PRIORS[key], weight=weight,
                                               relative_to=y[key])
        else:
            vector = np.array([base[key][n] for n in names])
            scale, worst[key] = minimax_fit((x @ vector)[:, None], y[key] - fixed_part[key], weight=weight,
                                            relative_to=y[key], names=("scale",))
            solution = vector * scale[0]
        coeffs[key] = {n: round(float(c), 4) for n, c in zip(names, solution)}
    check = []
    for design in DESIGNS:
        flat = records.get(design.name, {}).get("flat")
        if design.family == family and design.held_out and flat:
            check.append({"design": design.name, "spec": design.spec(), "yosys": {k: flat[k] for k in ("lut_sites", "ff", "bram36",
                                                                              "fmax_estimate_mhz")}})
    units = sum(1 for d in DESIGNS if d.family == family and not d.held_out and records.get(d.name, {}).get("units"))
    return {"family": family, "lut": coeffs["lut"], "ff": coeffs["ff"],
            "source": f"bench/calibrate.py: per-unit minimax fit {'of one scale on the xcup coefficients ' if base else ''}"
                      f"on {len(labels)} units of {units} Yosys synth_xilinx runs that keep each unit's hierarchy "
                      f"(worst weighted training error LUT {worst['lut']:.0%}, FF {worst['ff']:.0%})",
            "check": check}


def report(records: dict[str, Any], family: str) -> list[dict[str, Any]]:
    """Estimate / Yosys of every recorded design of ``family`` under the current coefficients:
    against the hierarchical total and, where recorded, the flattened run."""
    from qmlp.hwgen.estimate import estimate

    est_mod.coefficients.cache_clear()
    est_mod.load_calibration.cache_clear()
    out = []
    for design in DESIGNS:
        record = records.get(design.name, {})
        if design.family != family or not ({"units", "flat"} & set(record)):
            continue
        e = estimate(design.dataflow(), family)
        row: dict[str, Any] = {"design": design.name, "held_out": design.held_out}
        if "units" in record:
            units = record["units"]["units"].values()
            row.update(lut_hier=e.lut / sum(u["lut_sites"] for u in units), ff_hier=e.ff / sum(u["ff"] for u in units),
                       bram=(e.bram36, sum(u["bram36"] for u in units)))
        if "flat" in record:
            flat = record["flat"]
            row.update(lut_flat=e.lut / flat["lut_sites"], ff_flat=e.ff / flat["ff"], bram=(e.bram36, flat["bram36"]))
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-only", action="store_true", help="refit from the recorded sweep")
    parser.add_argument("--only", nargs="*", help="synthesize only these designs")
    parser.add_argument("--no-flat", action="store_true", help="skip the flattened runs of held-out designs")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    records = json.loads(RESULTS.read_text())["designs"] if RESULTS.exists() else {}
    if not args.fit_only:
        for design in DESIGNS:
            if args.only and design.name not in args.only:
                continue
            record = records.setdefault(design.name, {})
            for flat in (False, True):
                key = "flat" if flat else "units"
                # a held-out design is checked as a whole only: its per-unit run would feed nothing
                if key in record or flat != design.held_out or (flat and args.no_flat):
                    continue
                start = time.perf_counter()
                try:
                    record[key] = synth_design(design, flat, args.timeout)
                except QmlpError as error:
                    record[f"{key}_error"] = str(error)[:300]
                # merge into what is on disk: a second invocation (--only) may have added designs meanwhile
                on_disk = json.loads(RESULTS.read_text())["designs"] if RESULTS.exists() else {}
                records = {**on_disk, design.name: record}
                command = json.loads(RESULTS.read_text()).get("command", []) if RESULTS.exists() else []
                this = " ".join(["python bench/calibrate.py", *sys.argv[1:]])
                command = ([command] if isinstance(command, str) else command) + [this]
                RESULTS.write_text(json.dumps({"command": list(dict.fromkeys(command)), "designs": records},
                                              indent=1) + "\n")
                print(f"{design.name} ({key}): {time.perf_counter() - start:.0f} s", flush=True)
    fitted: dict[str, Any] = {}
    for family in ("xcup", "xc7"):
        if not len(training_rows(records, family)[2]):
            print(f"{family}: no training designs recorded yet; its coefficients are left as they are")
            continue
        coeffs = fitted[family] = fit(records, family, fitted.get("xcup"))
        out = est_mod.CALIBRATION_DIR / f"{family}.json"
        # the delay margins need flattened netlists' depths; this per-unit sweep keeps the earlier fit
        coeffs["timing"] = est_mod.load_calibration(family).get("timing", {})
        out.write_text(json.dumps(coeffs, indent=1) + "\n")
        est_mod.coefficients.cache_clear()
        est_mod.load_calibration.cache_clear()
        for record in coeffs["check"]:  # what the fitted model says about each check design (the test pins it)
            e = est_mod.estimate(next(d for d in DESIGNS if d.name == record["design"]).dataflow(), family)
            y = record["yosys"]
            record["estimate"] = {"lut_sites": e.lut, "ff": e.ff, "bram36": e.bram36}
            record["within_band"] = abs(e.lut / y["lut_sites"] - 1) <= BAND and abs(e.ff / y["ff"] - 1) <= BAND
            record["bram_exact"] = e.bram36 == y["bram36"]
        out.write_text(json.dumps(coeffs, indent=1) + "\n")
        print(f"{family}: {coeffs['source']}")
        for r in report(records, family):
            hier = f" units LUT x{r['lut_hier']:.2f} FF x{r['ff_hier']:.2f}" if "lut_hier" in r else ""
            flat = f" flat LUT x{r['lut_flat']:.2f} FF x{r['ff_flat']:.2f}" if "lut_flat" in r else ""
            print(f"  {r['design']:<22} {'held-out' if r['held_out'] else 'train   '}{hier}{flat} "
                  f"BRAM {r['bram'][0]:g}/{r['bram'][1]:g}")
    if fitted:
        from bench.hw_quality import write_calibration_paragraph

        print("BENCHMARKS.md calibration paragraph:", "rewritten" if write_calibration_paragraph() else "not found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
