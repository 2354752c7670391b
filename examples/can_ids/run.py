"""CAN intrusion-detection case study, end to end, with the `qmlp` command line only.

For the seed paper's detector (40-256-128-64-32-4, 2-bit activations) at two weight precisions
(int2 and ternary = 1.58-bit) this script trains (or reuses the shipped models), compiles each for
the ZCU104 at the seed's 100 k messages/s and fully parallel, synthesizes with Yosys, verifies
reference == simulator == RTL, runs the hardware-in-the-loop suite on the virtual board, profiles
latency and energy, and writes RESULTS.md + results.json + a bar chart next to the seed's numbers.

    python examples/can_ids/run.py                 # full: train, synth, everything
    python examples/can_ids/run.py --reuse-models  # skip training: examples/can_ids_*.onnx
    python examples/can_ids/run.py --quick         # short training, no Yosys, small samples

Every stage is a real `qmlp` subprocess (the commands a user would type); their logs go to
WORK/<design>/logs/. The results directory is written whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["SEED", "Variant", "Design", "VARIANTS", "FPS_POINTS", "StepFailed", "plan", "qmlp", "snapshot_model",
           "parse_verify", "junit_counts", "score", "resources", "build_table", "render_markdown", "plot_results",
           "write_results", "update_readme", "main"]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCHEMA = "qmlp.case_study.can_ids"

# The seed design (FPL'23 CQMLP, FINN on ZCU104), as published; see /work/shared/DESIGN.md.
SEED: dict[str, Any] = {
    "name": "seed (FINN, FPL'23)",
    "topology": [40, 256, 128, 64, 32, 4],
    "weights": "INT2", "acts": 2,
    "accuracy": 0.9991,
    "lut": 3999, "ff": 4524, "bram36": 4, "dsp": 0,
    "clock_mhz": 200.0,
    "latency_s": 0.11e-3,
    "energy_j": 0.23e-3,
    "kind": "published",
    "notes": "accuracy on the real HCRL Car-Hacking data; post-implementation resources (Vivado); "
             "latency timed in Python around the DMA call on the board; energy = that time x 2.15 W "
             "total rail power",
}


@dataclass(frozen=True)
class Variant:
    """One weight precision: the `qmlp train` recipe and the shipped model that `--reuse-models` uses."""
    key: str
    label: str
    weights: str
    shipped: str


@dataclass(frozen=True)
class Design:
    """One compiled design: a variant at one throughput target (`--target-fps`)."""
    variant: Variant
    fps: str

    @property
    def name(self) -> str:
        return f"{self.variant.key}_{'max' if self.fps == 'max' else 'fps' + self.fps}"

    @property
    def label(self) -> str:
        return f"{self.variant.label}, {'fully parallel' if self.fps == 'max' else f'{int(self.fps):,}/s'}"


VARIANTS: tuple[Variant, ...] = (
    Variant("w2a2", "2-bit", "int2", "examples/can_ids_w2a2.onnx"),
    Variant("ternary", "1.58-bit", "ternary", "examples/can_ids_ternary.onnx"),
)
# The seed's 100 k messages/s, then fully parallel (one inference per clock).
FPS_POINTS: tuple[str, ...] = ("100000", "max")
# Yosys took > 12 min (still elaborating) on a fully parallel design here vs ~40 s on a folded one.
DEFAULT_SYNTH_FPS = "100000"
QUICK_DURATION = 10  # --quick: seconds of synthetic traffic per attack type for training and testing
QUICK_TEST_WINDOWS = 2000  # --quick: test windows run through the RTL


def plan(variants: Sequence[str] | None = None, fps: Sequence[str] | None = None) -> list[Design]:
    """The designs to build, in order (all variants at the first fps point, then the next). Unknown
    names raise ValueError."""
    keys = {v.key: v for v in VARIANTS}
    chosen = list(variants) if variants else list(keys)
    for key in chosen:
        if key not in keys:
            raise ValueError(f"unknown variant {key!r}; choose from {', '.join(keys)}")
    points = list(fps) if fps else list(FPS_POINTS)
    for point in points:
        if point != "max" and not point.isdigit():
            raise ValueError(f"--fps {point!r}: give a whole number of inferences/s or 'max'")
    # Throughput-major: the small folded designs finish first, the slow fully parallel ones last.
    return [Design(keys[k], p) for p in points for k in chosen]


# ---------------------------------------------------------------------------------------------
# progress and subprocesses


class Progress:
    """Numbered progress lines with the time each step took and the total so far."""

    def __init__(self, total: int, stream=sys.stdout) -> None:  # noqa: ANN001 - a text stream
        self.total, self.done, self.start, self.stream = total, 0, time.monotonic(), stream

    def run(self, title: str, action: Callable[[], str | None]) -> float:
        self.done += 1
        print(f"[{self.done:2d}/{self.total}] {title} ...", file=self.stream, flush=True)
        t0 = time.monotonic()
        detail = action()
        seconds = time.monotonic() - t0
        print(f"        {seconds:8.1f} s  (total {time.monotonic() - self.start:7.1f} s)"
              f"{'  ' + detail if detail else ''}", file=self.stream, flush=True)
        return seconds


class StepFailed(RuntimeError):
    """A `qmlp` command failed; the message names the command and its log."""


def qmlp(args: Sequence[str], log: Path) -> str:
    """Run ``qmlp ARGS`` with this interpreter's install, its stdout and stderr kept in ``log``;
    return stdout. Raises StepFailed with the log's last lines on a non-zero exit."""
    cmd = [sys.executable, "-m", "qmlp", *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    # Verilator's makefiles call `python`: put this venv's bin first.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    log.write_text(f"$ qmlp {' '.join(args)}\n# exit {proc.returncode}\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise StepFailed(f"`qmlp {' '.join(args)}` exited {proc.returncode} (log {log}):\n{tail}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------
# the stages


def train(variant: Variant, work: Path, quick: bool, seed: int) -> tuple[Path, list[str]]:
    """Train one variant; return the model path and the exact command."""
    model = work / "models" / f"can_ids_{variant.key}.onnx"
    model.parent.mkdir(parents=True, exist_ok=True)  # `qmlp train -o` wants an existing folder
    extra = (["--epochs", "2", "--can-duration", str(QUICK_DURATION)] if quick
             else ["--epochs", "20", "--can-duration", "60"])
    args = ["train", "--dataset", "can", "--weights", variant.weights, "--acts", "2", *extra,
            "--seed", str(seed), "--vectors", "200", "--no-progress", "-o", str(model)]
    qmlp(args, work / "logs" / f"train_{variant.key}.log")
    return model, args


def _sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot_model(model: Path, folder: Path) -> Path:
    """Copy ``model`` and its .npz/.json companions into ``folder`` and return the copy: every
    design of the run then sees the same bytes even if the shipped model is replaced meanwhile."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".onnx", ".npz", ".json"):
        shutil.copyfile(model.with_suffix(suffix), folder / model.with_suffix(suffix).name)
    return folder / model.name


def read_training(model: Path) -> dict[str, Any]:
    """Accuracy numbers from the training report written next to the model."""
    report = json.loads(model.with_suffix(".json").read_text())
    return {"accuracy": report["accuracy"], "float_accuracy": report["float_accuracy"],
            "test_windows": report["samples"]["test"], "command": report.get("command"),
            "train_seconds": report.get("seconds")}


def write_test_split(work: Path, *, seed: int, duration: float, limit: int | None) -> tuple[Path, Path]:
    """Regenerate the held-out CAN test split the models were scored on (same generator, seed and
    duration as `qmlp train`) and save it as x_test.npy / y_test.npy; ``limit`` keeps N windows
    evenly spread over the split (it is ordered by time block, so a prefix would hold one class)."""
    import numpy as np
    from qmlp.quantize.datasets import load_dataset

    data = load_dataset("can", seed=seed, can_duration=duration)
    keep = np.arange(len(data.y_test)) if limit is None or limit >= len(data.y_test) else \
        np.linspace(0, len(data.y_test) - 1, limit).round().astype(np.int64)
    x, y = data.x_test[keep], data.y_test[keep]
    folder = work / "data"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "x_test.npy", x)
    np.save(folder / "y_test.npy", y)
    return folder / "x_test.npy", folder / "y_test.npy"


def score(outputs: Path, labels: Path) -> dict[str, Any]:
    """Accuracy and confusion matrix (rows true, columns predicted) of saved scores vs labels."""
    import numpy as np

    out, y = np.load(outputs), np.load(labels)
    if out.shape[0] != y.shape[0]:
        raise StepFailed(f"{outputs}: {out.shape[0]} outputs for {y.shape[0]} labels")
    pred = out.argmax(axis=1)
    classes = out.shape[1]
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    return {"vectors": int(y.shape[0]), "correct": int((pred == y).sum()), "accuracy": float((pred == y).mean()),
            "confusion": confusion.tolist()}


def junit_counts(path: Path) -> dict[str, int]:
    """Test counts of a JUnit XML file (one or more <testsuite> elements)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0) or 0)
    return counts


def parse_verify(stdout: str) -> dict[str, Any]:
    """The verdict of `qmlp verify OUT` (exit status 0 already checked): its final ``verify: PASS``
    line and the per-stage lines before it. Raises StepFailed when the PASS line is missing."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not any(line.startswith("verify: PASS") for line in lines):
        raise StepFailed("`qmlp verify` exited 0 but printed no 'verify: PASS' line")
    return {"passed": True, "summary": [line for line in lines if line.startswith("[") or line.startswith("verify:")]}


def build_design(design: Design, model: Path, vectors: Path, split: tuple[Path, Path], work: Path, *,
                 quick: bool, synth: bool, toggle: bool, progress: Progress) -> dict[str, Any]:
    """compile (+ Yosys) -> verify -> hil -> test-split accuracy on the RTL -> profile for one design;
    return its results record."""
    out = work / design.name
    logs = work / "logs" / design.name
    if out.exists():
        shutil.rmtree(out)
    record: dict[str, Any] = {"name": design.name, "label": design.label, "variant": design.variant.key,
                              "weights": design.variant.weights, "target_fps": design.fps,
                              "model": str(model), "out_dir": _rel(str(out)), "seconds": {}, "commands": {}}

    compile_args = ["compile", str(model), "--board", "zcu104", "-o", str(out), "--target-fps", design.fps]
    if synth:
        compile_args.append("--synth")
    samples = "200" if quick else "2000"
    verify_args = ["verify", str(out), "--samples", samples]
    junit = logs / "hil_junit.xml"
    hil_args = ["hil", str(out), "--target", "sim", "--vectors", str(vectors), "--junit", str(junit)]
    if quick:
        hil_args += ["--large-batch", "200"]
    rtl_scores = logs / "test_outputs_rtl.npy"
    accuracy_args = ["simulate", str(out), "--input", str(split[0]), "--output", str(rtl_scores), "--level", "rtl"]
    profile_args = ["profile", str(out), "--target", "sim", "--json"]
    if quick:
        profile_args += ["--runs", "1000", "--batch", "256"]
    if quick or not toggle:
        profile_args.append("--no-toggle")

    def do_compile() -> str:
        qmlp(compile_args, logs / "compile.log")
        perf = json.loads((out / "report" / "estimate_network_performance.json").read_text())
        layers = json.loads((out / "report" / "estimate_layer_resources.json").read_text())
        record["estimate"] = {"ii_cycles": perf["ii_cycles"], "latency_cycles": perf["latency_cycles"],
                              "fps": perf["estimated_throughput_fps"], "clock_mhz": perf["clock_mhz"],
                              "resources": _total_estimate(layers)}
        record["folding"] = json.loads((out / "final_hw_config.json").read_text())
        synth_file = out / "report" / "synth_resources.json"
        if synth_file.exists():
            record["synth"] = json.loads(synth_file.read_text())
        res = resources(record)
        return f"{res['lut']:,} LUT, {res['ff']:,} FF, {res['bram36']:g} BRAM36, {res['dsp']} DSP ({res['kind']})"

    def do_verify() -> str:
        stdout = qmlp(verify_args, logs / "verify.log")
        record["verify"] = {"samples": int(samples), **parse_verify(stdout)}
        return f"PASS on {samples} vectors + the model's reference"

    def do_hil() -> str:
        qmlp(hil_args, logs / "hil.log")
        record["hil"] = junit_counts(junit)
        h = record["hil"]
        if h["failures"] or h["errors"]:  # qmlp hil exits non-zero on these too; belt and braces
            raise StepFailed(f"HIL suite on {design.name}: {h}")
        return f"{h['tests']} tests, {h['failures']} failures, {h['errors']} errors"

    def do_accuracy() -> str:
        qmlp(accuracy_args, logs / "accuracy.log")
        record["rtl_accuracy"] = score(rtl_scores, split[1])
        rtl_scores.unlink()  # 1 MB of floats per design: the counts are kept, the scores are not
        a = record["rtl_accuracy"]
        return f"{a['accuracy']:.3%} ({a['correct']:,} / {a['vectors']:,} test windows, RTL simulation)"

    def do_profile() -> str:
        stdout = qmlp(profile_args, logs / "profile.log")
        record["profile"] = _profile_summary(json.loads(stdout))
        p = record["profile"]
        return (f"fabric {p['fabric_cycles']} cycles = {p['fabric_s'] * 1e6:.2f} us, end to end p50 "
                f"{p['end_to_end_p50_s'] * 1e6:.1f} us, E {p['energy_total_j']:.3g} J ({p['energy_kind']})")

    for stage, args, action in (("compile", compile_args, do_compile), ("verify", verify_args, do_verify),
                                ("hil", hil_args, do_hil), ("accuracy", accuracy_args, do_accuracy),
                                ("profile", profile_args, do_profile)):
        record["commands"][stage] = "qmlp " + " ".join(_rel(a) for a in args)
        record["seconds"][stage] = round(progress.run(f"{design.name}: {stage}", action), 1)
    return record


def _rel(arg: str) -> str:
    """A path argument relative to the repository (so the recorded commands are portable)."""
    try:
        return str(Path(arg).resolve().relative_to(ROOT)) if os.sep in arg else arg
    except ValueError:
        return arg


def _total_estimate(layers: Any) -> dict[str, float]:
    """Sum the analytical per-layer estimate (estimate_layer_resources.json) over its layers."""
    rows = layers.get("layers", layers) if isinstance(layers, dict) else layers
    if isinstance(rows, dict):
        rows = [v for k, v in rows.items() if isinstance(v, dict) and k.lower() != "total"]
    total: dict[str, float] = {}
    for row in rows:
        for key in ("LUT", "FF", "BRAM36", "URAM", "DSP"):
            total[key] = total.get(key, 0) + row.get(key, 0)
    return total


def resources(record: dict[str, Any]) -> dict[str, Any]:
    """LUT/FF/BRAM36/DSP of a design: Yosys counts when synthesized, else the analytical estimate."""
    synth = record.get("synth")
    if synth:
        counts = synth.get("resources", synth)
        bram = counts.get("BRAM36", 0) + 0.5 * counts.get("BRAM18", 0)
        # LUT sites (a RAM32M16 fills 8); reports from before LUT_sites count each LUTRAM once
        lut = counts.get("LUT_sites", counts["LUT"] + counts.get("LUTRAM", 0))
        return {"lut": lut, "ff": counts["FF"], "bram36": bram,
                "dsp": counts.get("DSP", 0), "kind": "yosys"}
    est = {k.lower(): v for k, v in record["estimate"]["resources"].items()}
    return {"lut": round(est.get("lut", 0)), "ff": round(est.get("ff", 0)),
            "bram36": est.get("bram36", est.get("bram", 0)), "dsp": round(est.get("dsp", 0)),
            "kind": "analytical estimate"}


def _profile_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The few profile.json numbers the table shows (schema qmlp.profile v1, docs/profile.md)."""
    lat = report["latency"]
    energy = report["energy"]
    return {
        "fabric_cycles": lat["fabric"]["cycles"]["p50"],
        "fabric_estimate_cycles": lat["fabric"]["estimate_cycles"],
        "fabric_s": lat["fabric"]["seconds"]["p50_s"],
        "fabric_kind": lat["fabric"]["kind"],
        "call_p50_s": lat["call"]["seconds"]["p50_s"],
        "call_kind": lat["call"]["kind"],
        "end_to_end_p50_s": lat["end_to_end"]["seconds"]["p50_s"],
        "end_to_end_p99_s": lat["end_to_end"]["seconds"]["p99_s"],
        "end_to_end_kind": lat["end_to_end"]["kind"],
        "ii_cycles": report["throughput"]["ii_cycles"],
        "estimate_ii_cycles": report["throughput"]["estimate_ii_cycles"],
        "fabric_ips": report["throughput"]["fabric_ips"],
        "energy_kind": energy["kind"],
        "energy_total_j": energy["e_total_j"],
        "energy_dyn_j": energy["e_dyn_j"],
        "energy_static_w": energy.get("static_w"),
        "energy_dynamic_w": energy.get("dynamic_w"),
        "energy_resources": energy.get("resources", {}).get("source"),
        "energy_activity": energy.get("activity", {}).get("source"),
        "clock_mhz": report["design"]["clock_mhz"],
    }


# ---------------------------------------------------------------------------------------------
# the table, the plot and the results directory

# How each of our columns is obtained (the table's footnotes key into this).
PROVENANCE: dict[str, str] = {
    "accuracy": "measured in simulation: the compiled RTL under Verilator (`qmlp simulate OUT --level rtl`) "
                "on the held-out synthetic CAN test split (windows counted in results.json); the training "
                "report's figure for the QAT model is kept next to it",
    "yosys": "measured by Yosys `synth_xilinx -family xcup` (netlist cell counts, not place-and-route; "
             "LUT = LUT sites: logic LUTs plus the sites LUTRAM/SRL cells fill, 8 per RAM32M16)",
    "analytical estimate": "estimated by qmlp's analytical resource model (Yosys not run on that design)",
    "fabric": "measured in simulation: the RTL's own latency counter under Verilator, in clock cycles, "
              "converted at the 200 MHz target clock",
    "end_to_end": "fabric cycles + a modelled DMA (docs/profile.md) + the driver's host work timed on "
                  "this machine's CPU (not the board's)",
    "fmax": "estimated from Yosys logic depth with rule-of-thumb delays (no open timing for UltraScale+)",
    "energy": "estimated: qmlp's accelerator-only power model (part static power + dynamic power from "
              "resource counts and switching activity) x one initiation interval; excludes PS, DMA and DDR",
    "seed": "published (FPL'23, FINN on a real ZCU104; latency timed in Python around the DMA, "
            "energy = that time x 2.15 W rail power)",
}


def _fmt_int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def _fmt_energy(joules: float | None) -> str:
    if joules is None:
        return "-"
    for scale, unit in ((1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ")):
        if joules >= scale:
            return f"{joules / scale:.3g} {unit}"
    return f"{joules / 1e-12:.3g} pJ"


def build_table(results: dict[str, Any]) -> str:
    """The Markdown comparison table of a results.json dict: the seed's published row, then one row
    per design, each cell marked with its provenance footnote. Pure: no files, no clock."""
    seed = results["seed"]
    header = ("| design | accuracy | LUT | FF | BRAM36 | DSP | fmax (seed: clock) | II (cycles) | fabric latency | "
              "end-to-end p50 | energy / inference |")
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    rows = [header, rule,
            f"| {seed['name']} ᵖ | {seed['accuracy']:.2%} | {_fmt_int(seed['lut'])} | {_fmt_int(seed['ff'])} | "
            f"{seed['bram36']:g} | {seed['dsp']} | {seed['clock_mhz']:.0f} MHz | - | - | "
            f"{_fmt_time(seed['latency_s'])} | {_fmt_energy(seed['energy_j'])} |"]
    for d in results["designs"]:
        res = resources(d)
        rk = "ʸ" if res["kind"] == "yosys" else "ᵉ"
        prof = d.get("profile", {})
        fmax = d.get("synth", {}).get("fmax_estimate_mhz")
        acc = d.get("rtl_accuracy", {}).get("accuracy")
        rows.append(
            f"| {d['label']} | {'-' if acc is None else f'{acc:.3%}'} ᵃ ˢ | {_fmt_int(res['lut'])} {rk} | "
            f"{_fmt_int(res['ff'])} {rk} | {res['bram36']:g} {rk} | {res['dsp']} {rk} | "
            f"{'-' if fmax is None else f'{fmax:.0f} MHz ᵉ'} | "
            f"{_fmt_int(prof.get('ii_cycles'))} ˢ | "
            f"{_fmt_time(prof.get('fabric_s'))} ({_fmt_int(prof.get('fabric_cycles'))} cyc) ˢ | "
            f"{_fmt_time(prof.get('end_to_end_p50_s'))} ᵐ | {_fmt_energy(prof.get('energy_total_j'))} ᵉ |")
    inputs: dict[str, list[str]] = {}  # energy-model inputs -> the designs that used them
    for d in results["designs"]:
        prof = d.get("profile") or {}
        kind = ("Yosys counts" if str(prof.get("energy_resources", "")).startswith("synth") else "analytical counts") + \
            (" + measured toggle rates" if str(prof.get("energy_activity", "")).startswith("measured")
             else " + 12.5% default toggle rate")
        inputs.setdefault(kind, []).append(d["label"])
    sources = [f"{kind} for {' and '.join(labels)}" for kind, labels in inputs.items()]
    notes = [
        "",
        f"ᵖ {PROVENANCE['seed']}.  ",
        f"ᵃ {PROVENANCE['accuracy']}.  ",
        f"ʸ {PROVENANCE['yosys']}.  ",
        f"ᵉ resources: {PROVENANCE['analytical estimate']}; fmax: {PROVENANCE['fmax']}; energy: "
        f"{PROVENANCE['energy']} (inputs: {'; '.join(sources) if sources else '-'}).  ",
        f"ˢ {PROVENANCE['fabric']}.  ",
        f"ᵐ modelled/measured mix: {PROVENANCE['end_to_end']}.",
    ]
    return "\n".join(rows + notes)


def plot_results(results: dict[str, Any], path: Path) -> Path:
    """Bar chart: LUT and FF (log scale) and latency (fabric and end to end) of each design vs the seed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seed = results["seed"]
    names = ["seed\n(published)"] + [d["label"].replace(", ", "\n") for d in results["designs"]]
    res = [resources(d) for d in results["designs"]]
    luts = [seed["lut"]] + [r["lut"] for r in res]
    ffs = [seed["ff"]] + [r["ff"] for r in res]
    fabric = [None] + [d.get("profile", {}).get("fabric_s") for d in results["designs"]]
    e2e = [seed["latency_s"]] + [d.get("profile", {}).get("end_to_end_p50_s") for d in results["designs"]]
    # (the seed published no fabric-only latency)

    fig, (ax_res, ax_lat) = plt.subplots(1, 2, figsize=(13, 5))
    x = list(range(len(names)))
    w = 0.38

    def bars(ax, offset: float, values: list, label: str, color: str, fmt: Callable[[float], str]) -> None:  # noqa: ANN001
        shown = [v if v else 0 for v in values]
        drawn = ax.bar([i + offset for i in x], shown, w, label=label, color=color)
        for rect, value in zip(drawn, values):
            if value:
                ax.annotate(fmt(value), (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                            ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")

    count = lambda v: f"{v / 1000:.0f}k" if v >= 10_000 else f"{v:,.0f}"  # noqa: E731
    bars(ax_res, -w / 2, luts, "LUT", "#4878a8", count)
    bars(ax_res, w / 2, ffs, "FF", "#e0a040", count)
    ax_res.set_yscale("log")
    ax_res.set_ylim(bottom=100)  # a common floor so log-scale bar heights compare
    ax_res.set_ylabel("count (log scale)")
    ax_res.set_title("Resources (seed: Vivado, published; ours: Yosys)" if all(r["kind"] == "yosys" for r in res)
                     else "Resources (seed: published; ours: Yosys or estimate)", fontsize=10)
    us = lambda v: f"{v:.3g}"  # noqa: E731
    fabric_us = [v * 1e6 if v else None for v in fabric]
    e2e_us = [v * 1e6 if v else None for v in e2e]
    bars(ax_lat, -w / 2, fabric_us, "fabric (RTL simulation)", "#58a060", us)
    bars(ax_lat, w / 2, e2e_us, "end to end (seed: board, published; ours: modelled DMA + host)", "#b05050", us)
    ax_lat.set_yscale("log")
    ax_lat.set_ylim(bottom=0.01)
    ax_lat.set_ylabel("latency per inference, batch 1 (µs, log scale)")
    ax_lat.set_title("Latency", fontsize=10)
    for ax in (ax_res, ax_lat):
        ax.set_xticks(x)
        ax.set_xticklabels(names, fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(axis="y", alpha=0.3, which="major")
        ax.set_ylim(top=ax.get_ylim()[1] * 4)  # room for the legend and the value labels
    fig.suptitle("CAN intrusion detector 40-256-128-64-32-4 on ZCU104: qmlp vs the FINN seed design")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_markdown(results: dict[str, Any]) -> str:
    """RESULTS.md from a results.json dict (pure)."""
    run = results["run"]
    lines = [
        "# CAN intrusion detection: results",
        "",
        f"Produced by `{run['command']}` in {run['wall_seconds'] / 60:.1f} min wall time on "
        f"{run['machine']} ({run['created_utc']}, qmlp {run['qmlp_version']}). "
        f"Models: {'reused from examples/' if run['reuse_models'] else 'trained in this run'}"
        f"{' (quick: short training, small samples)' if run['quick'] else ''}."
        + ("" if run["designs_done"] == run["designs_planned"] else
           f" **Partial: {run['designs_done']} of {run['designs_planned']} designs so far (run in progress or "
           "stopped).**"),
        "",
        build_table(results),
        "",
    ]
    unsynthesized = [d["label"] for d in results["designs"] if not d.get("synth")]
    if run.get("synth") and unsynthesized:
        lines += [f"Yosys was not run on {' and '.join(unsynthesized)} (`--synth-fps "
                  f"{','.join(run.get('synth_fps', []))}`): their resources are qmlp's analytical estimate "
                  "and they have no fmax estimate. See README.md for why.", ""]
    lines += [
        "![LUT/FF and latency of each design vs the seed](case_study.png)",
        "",
        "## Checks per design",
        "",
        "| design | folding (PE x SIMD per layer) | verify (reference == simulator == RTL) | HIL suite (virtual board) | "
        "estimated II / latency = measured? |",
        "|---|---|---|---|---|",
    ]
    for d in results["designs"]:
        fold = ", ".join(f"{k} {v['PE']}x{v['SIMD']}" for k, v in d["folding"].items() if k != "Defaults")
        h = d.get("hil", {})
        p = d.get("profile", {})
        same = (p.get("fabric_cycles") == p.get("fabric_estimate_cycles")
                and p.get("ii_cycles") == d["estimate"]["ii_cycles"])
        lines.append(f"| {d['label']} | {fold} | PASS, {d['verify']['samples']:,} random vectors | "
                     f"{h.get('tests', 0)} tests, {h.get('failures', 0)} failures, {h.get('errors', 0)} errors | "
                     f"{'yes' if same else 'no'} ({d['estimate']['ii_cycles']:g} / {d['estimate']['latency_cycles']}"
                     f" cycles) |")
    lines += ["", "## Commands and step times", ""]
    for d in results["designs"]:
        lines.append(f"**{d['label']}** (`{d['model']}`)")
        lines.append("")
        for stage, cmd in d["commands"].items():
            lines.append(f"* {stage} ({d['seconds'][stage]:.1f} s): `{cmd}`")
        lines.append("")
    if results.get("training"):
        lines += ["Models:", ""]
        for key, t in results["training"].items():
            if t.get("reused"):
                lines.append(f"* {key}: `{t['reused']}` (sha256 {t['sha256'][:12]}…, copied at the start of the run), "
                             f"trained earlier by `{t['command']}`")
            else:
                lines.append(f"* {key}: trained in this run ({t.get('seconds', 0):.0f} s): `{t['command']}`")
        lines.append("")
    lines += [
        "## Reading the table",
        "",
        "* Accuracy: ours is on *synthetic* HCRL-like traffic (`qmlp.quantize.datasets.can`); the seed's on the "
        "real Car-Hacking data. Not the same test set.",
        "* Resources: Yosys netlist counts before place-and-route; Vivado's post-implementation numbers "
        "(the seed's) usually differ by tens of percent.",
        "* Latency: the seed's 0.11 ms is Python-around-DMA on the board's ARM core; our end-to-end figure "
        "models the DMA and times the driver's host work on this x86 machine. The fabric column is what the "
        "RTL itself takes, measured cycle-exactly in simulation.",
        "* Energy: the seed's 0.23 mJ is board rail power x Python call time; ours is an accelerator-only "
        "estimate. They differ by orders of magnitude by construction, not by merit; only a board "
        "measurement (`qmlp profile OUT --target tcp://... --power`) compares like with like.",
        "",
    ]
    return "\n".join(lines)


README_MARKERS = ("<!-- results table: written by run.py from results.json -->", "<!-- end of results table -->")


def update_readme(results: dict[str, Any], readmes: tuple[Path, ...] = (HERE / "README.md", ROOT / "README.md")) -> None:
    """Replace the table between README_MARKERS in each of ``readmes`` (this example's and the
    project's) with ``build_table(results)``."""
    for readme in readmes:
        text = readme.read_text()
        start, end = text.index(README_MARKERS[0]) + len(README_MARKERS[0]), text.index(README_MARKERS[1])
        readme.write_text(text[:start] + "\n" + build_table(results) + "\n" + text[end:])


def write_results(results: dict[str, Any], dest: Path) -> Path:
    """Write results.json, RESULTS.md and case_study.png into ``dest`` all at once: built in a
    scratch folder beside it and moved in only when every file is written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".case_study_", dir=dest.parent))
    try:
        (scratch / "results.json").write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
        (scratch / "RESULTS.md").write_text(render_markdown(results))
        plot_results(results, scratch / "case_study.png")
        dest.mkdir(parents=True, exist_ok=True)
        for f in scratch.iterdir():
            os.replace(f, dest / f.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dest


# ---------------------------------------------------------------------------------------------
# main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short version: 2-epoch training on 10 s of traffic, no Yosys, small samples")
    parser.add_argument("--reuse-models", action="store_true",
                        help="use the shipped examples/can_ids_*.onnx instead of training")
    parser.add_argument("--variants", default=",".join(v.key for v in VARIANTS),
                        help="comma-separated subset of: " + ", ".join(v.key for v in VARIANTS))
    parser.add_argument("--fps", default=",".join(FPS_POINTS), help="comma-separated --target-fps points")
    parser.add_argument("--no-synth", action="store_true", help="skip Yosys (implied by --quick)")
    parser.add_argument("--synth-fps", default=DEFAULT_SYNTH_FPS,
                        help="comma-separated --fps points that get Yosys (default %(default)s; add 'max' for the "
                             "fully parallel designs: Yosys needs far longer than the rest of the run to elaborate "
                             "them). The others use the analytical resource estimate, and the power estimate's "
                             "default 12.5%% toggle rate instead of a Verilator toggle measurement (whose "
                             "register census runs Yosys too); both labelled so")
    parser.add_argument("--work", type=Path, default=None, help="build folder (default build/case_study[_quick])")
    parser.add_argument("--results", type=Path, default=None,
                        help="where RESULTS.md/results.json/case_study.png go "
                             "(default examples/can_ids, or WORK/results with --quick)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--render", action="store_true",
                        help="run nothing: rewrite RESULTS.md and case_study.png (and, for examples/can_ids, "
                             "the README's table) from the results folder's results.json")
    args = parser.parse_args(argv)
    if args.render:
        dest = (args.results or HERE).resolve()
        results = json.loads((dest / "results.json").read_text())
        write_results(results, dest)
        if dest == HERE:
            update_readme(results)
        print(f"rewrote {dest}/RESULTS.md and case_study.png{' and the README table' if dest == HERE else ''} "
              "from results.json")
        return 0

    try:
        designs = plan(args.variants.split(","), args.fps.split(","))
    except ValueError as error:
        parser.error(str(error))
    work = (args.work or ROOT / "build" / ("case_study_quick" if args.quick else "case_study")).resolve()
    dest = (args.results or (work / "results" if args.quick else HERE)).resolve()
    synth = not (args.quick or args.no_synth)
    synth_points = set(args.synth_fps.split(","))
    variants = list(dict.fromkeys(d.variant for d in designs))
    steps = (0 if args.reuse_models else len(variants)) + 1 + 5 * len(designs) + 1
    command = "python examples/can_ids/run.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    print(f"CAN IDS case study: {len(designs)} designs ({', '.join(d.name for d in designs)}), "
          f"{'Yosys on ' + ', '.join(sorted(synth_points)) if synth else 'no Yosys'}, work in {work}", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    progress = Progress(steps)
    t0 = time.monotonic()

    models: dict[str, Path] = {}
    training: dict[str, dict[str, Any]] = {}
    try:
        for v in variants:
            if args.reuse_models:
                models[v.key] = snapshot_model(ROOT / v.shipped, work / "models")
                training[v.key] = {"command": read_training(models[v.key]).get("command"), "reused": v.shipped,
                                   "sha256": _sha256(models[v.key])}
                continue

            def do_train(v: Variant = v) -> str:
                model, targs = train(v, work, args.quick, args.seed)
                models[v.key] = model
                info = read_training(model)
                training[v.key] = {**info, "command": "qmlp " + " ".join(_rel(a) for a in targs)}
                return f"accuracy {info['accuracy']:.3%} (float {info['float_accuracy']:.3%})"

            training_seconds = progress.run(f"train {v.key} ({v.label})", do_train)
            training[v.key]["seconds"] = round(training_seconds, 1)

        # The shipped models were trained on 60 s of traffic with seed 0; ours with args.* below.
        duration = 60.0 if (args.reuse_models or not args.quick) else QUICK_DURATION
        split_seed = 0 if args.reuse_models else args.seed
        limit = QUICK_TEST_WINDOWS if args.quick else None
        split: list[Path] = []

        def do_split() -> str:
            split.extend(write_test_split(work, seed=split_seed, duration=duration, limit=limit))
            return f"{split[0].parent}"

        progress.run(f"test split (synthetic CAN, {duration:g} s per attack type, seed {split_seed}"
                     f"{f', {limit:,} windows spread over it' if limit else ''})", do_split)

        records: list[dict[str, Any]] = []
        for d in designs:
            model = models[d.variant.key]
            record = build_design(d, model, model.with_suffix(".npz"), (split[0], split[1]), work,
                                  quick=args.quick, synth=synth and d.fps in synth_points,
                                  toggle=d.fps in synth_points, progress=progress)
            record["training_accuracy"] = read_training(model)["accuracy"]
            record["model"] = _rel(str(model))
            record["model_sha256"] = _sha256(model)
            records.append(record)
            if len(records) < len(designs):  # a long run leaves usable results after every design
                write_results(_results(args, command, synth, synth_points, t0, training, records, len(designs)), dest)
    except StepFailed as error:
        print(f"case study: FAILED: {error}", file=sys.stderr)
        return 1

    results = _results(args, command, synth, synth_points, t0, training, records, len(designs))
    progress.run(f"write {_rel(str(dest))}/RESULTS.md, results.json, case_study.png",
                 lambda: str(write_results(results, dest)))
    if dest == HERE:
        update_readme(results)
    print()
    print(build_table(results))
    return 0


def _results(args: argparse.Namespace, command: str, synth: bool, synth_points: set[str], t0: float,
             training: dict[str, Any], records: list[dict[str, Any]], planned: int) -> dict[str, Any]:
    from qmlp import __version__
    return {
        "schema": SCHEMA, "schema_version": 1,
        "run": {"command": command, "quick": args.quick, "reuse_models": args.reuse_models, "synth": synth,
                "synth_fps": sorted(synth_points) if synth else [],
                "wall_seconds": round(time.monotonic() - t0, 1), "qmlp_version": __version__,
                "created_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}",
                "designs_planned": planned, "designs_done": len(records)},
        "seed": SEED, "provenance": PROVENANCE, "training": training, "designs": list(records),
    }


if __name__ == "__main__":
    sys.exit(main())
