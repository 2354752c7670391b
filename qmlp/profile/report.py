"""``OUT/report/profile.json`` (a versioned schema), the console table, and reproduction.

The JSON names every file its numbers come from (raw latency samples, the rail trace, the
resource report, the activity measurement) with a sha256, and ``reproduce`` recomputes the
headline numbers from those files alone, so a reader can check any report without rerunning it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError
from .energy import energy_per_inference, phase_stats, read_rail_csv
from .latency import latency_stats

__all__ = [
    "SCHEMA", "SCHEMA_VERSION", "SEED", "REQUIRED_KEYS", "file_entry", "write_samples_csv", "read_samples_csv",
    "check_schema", "format_table", "write_json", "reproduce", "check_report", "seed_comparison",
]

SCHEMA = "qmlp.profile"
SCHEMA_VERSION = 1

# DESIGN.md: the seed design (FPL'23 CQMLP on ZCU104, FINN) timed 0.11 ms in Python around the
# DMA call and multiplied by 2.15 W total rail power to get 0.23 mJ per inference.
# Its numbers describe that network only, so they are set beside a report only for the same topology.
SEED = {"name": "seed design (FPL'23 CQMLP, FINN, ZCU104)", "latency_s": 0.11e-3, "energy_j": 0.23e-3,
        "power_w": 2.15, "topology": [40, 256, 128, 64, 32, 4],
        "method": "measured on a ZCU104: Python timer on the board's ARM cores around the DMA call, "
                  "x 2.15 W total rail power"}

# The stable part of the schema: these keys (dotted paths) are always present; values may be null
# where a target cannot measure them. Adding keys is compatible; removing or renaming one is a
# new SCHEMA_VERSION.
REQUIRED_KEYS = (
    "schema", "schema_version", "qmlp_version", "created_utc", "design.name", "design.out_dir",
    "design.dataflow_sha256", "design.clock_mhz", "design.board", "target.kind", "target.address",
    "target.engine", "latency.fabric.kind", "latency.fabric.seconds", "latency.fabric.cycles",
    "latency.fabric.estimate_cycles", "latency.call.kind", "latency.call.seconds", "latency.call.assumptions",
    "latency.end_to_end.kind", "latency.end_to_end.seconds", "latency.end_to_end.host_seconds",
    "throughput.batch", "throughput.fabric_ips", "throughput.call_ips", "throughput.end_to_end_ips",
    "throughput.cycles", "throughput.estimate_ii_cycles", "energy.kind", "energy.e_dyn_j", "energy.e_total_j",
    "energy.assumptions", "seed_comparison", "files",
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_entry(path: Path, report_dir: Path) -> dict[str, str]:
    """A named input: path relative to the report folder when inside OUT, and its sha256."""
    try:
        shown = path.resolve().relative_to(report_dir.resolve().parent).as_posix()
    except ValueError:
        shown = str(path.resolve())
    return {"path": shown, "sha256": _sha256(path)}


def _resolve(entry: Mapping[str, str], report_dir: Path) -> Path:
    path = Path(entry["path"])
    path = path if path.is_absolute() else report_dir.parent / path
    if not path.is_file():
        raise ConfigError(f"{path}: named in profile.json but missing; rerun 'qmlp profile'")
    if _sha256(path) != entry["sha256"]:
        raise ConfigError(f"{path}: changed since profile.json was written (sha256 differs); rerun 'qmlp profile'")
    return path


def write_samples_csv(path: Path, columns: Mapping[str, np.ndarray], *, warmup: int, note: str) -> None:
    """Raw per-run samples, one column per layer, in run order (warm-up rows first, flagged)."""
    names = list(columns)
    length = len(next(iter(columns.values())))
    with path.open("w", newline="") as handle:
        handle.write(f"# qmlp profile raw samples; {note}\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["run", "warmup", *names])
        for index in range(length):
            writer.writerow([index, int(index < warmup), *[repr(float(columns[n][index])) for n in names]])


def read_samples_csv(path: Path) -> tuple[dict[str, np.ndarray], int]:
    rows = list(csv.reader(line for line in path.read_text().splitlines() if not line.startswith("#")))
    header, body = rows[0], rows[1:]
    warmup = sum(int(row[1]) for row in body)
    return {name: np.array([float(row[i]) for row in body]) for i, name in enumerate(header) if i >= 2}, warmup


def _lookup(data: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def check_schema(data: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the first missing key or a foreign schema/version."""
    if data.get("schema") != SCHEMA:
        raise ConfigError(f"not a qmlp profile document (schema {data.get('schema')!r}, expected {SCHEMA!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(f"profile schema version {data.get('schema_version')} not supported (this qmlp reads {SCHEMA_VERSION})")
    for key in REQUIRED_KEYS:
        if not _lookup(data, key)[0]:
            raise ConfigError(f"profile.json: missing key {key!r}")


def seed_comparison(topology: list[int], e2e_p50_s: float | None, e_total_j: float | None, energy_kind: str,
                    *, latency_how: str) -> dict[str, Any]:
    """Our numbers next to the seed's 0.11 ms / 0.23 mJ, with the ratio where both exist; only
    for the seed's topology (``applicable`` False and a reason otherwise). ``latency_how`` says
    what our latency is made of and where each part was measured, modelled or timed."""
    if list(topology) != SEED["topology"]:
        shape = "-".join(map(str, topology))
        return {"applicable": False, "reason": f"the model is {shape}, not the seed's "
                                               f"{'-'.join(map(str, SEED['topology']))}: no like-for-like figures"}
    return {
        "applicable": True,
        "seed": dict(SEED),
        "ours": {"latency_s": e2e_p50_s, "energy_j": e_total_j, "energy_kind": energy_kind,
                 "latency_layer": "end_to_end p50", "latency_how": latency_how},
        "latency_ratio": None if not e2e_p50_s else SEED["latency_s"] / e2e_p50_s,
        "energy_ratio": None if not e_total_j else SEED["energy_j"] / e_total_j,
    }


def write_json(data: Mapping[str, Any], path: Path) -> None:
    check_schema(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def _fmt_s(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return "-"


def _fmt_j(joules: float | None) -> str:
    if joules is None:
        return "-"
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("uJ", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12)):
        if abs(joules) >= scale or unit == "pJ":
            return f"{joules / scale:.3g} {unit}"
    return "-"


def _fmt_rate(ips: float | None) -> str:
    if not ips:
        return "-"
    for unit, scale in (("G/s", 1e9), ("M/s", 1e6), ("k/s", 1e3), ("/s", 1.0)):
        if ips >= scale:
            return f"{ips / scale:.3g} {unit}"
    return f"{ips:.3g} /s"


def format_table(data: Mapping[str, Any]) -> str:
    """The console summary: three latency layers, throughput, energy, the seed line."""
    d, t, lat = data["design"], data["target"], data["latency"]
    lines = [f"qmlp profile: {d['name']} on {t['kind']} ({t['engine']}), {d['clock_mhz']:g} MHz",
             f"{'layer':<12} {'how':<48} {'p50':>10} {'p90':>10} {'p99':>10} {'max':>10} {'runs':>6}"]
    for key, label in (("fabric", "fabric"), ("call", "call"), ("end_to_end", "end to end")):
        layer = lat[key]
        s = layer["seconds"] or {}
        lines.append(f"{label:<12} {layer['kind']:<48} {_fmt_s(s.get('p50_s')):>10} {_fmt_s(s.get('p90_s')):>10} "
                     f"{_fmt_s(s.get('p99_s')):>10} {_fmt_s(s.get('max_s')):>10} {s.get('runs', '-'):>6}")
    fab = lat["fabric"]
    if fab.get("cycles"):
        est = fab.get("estimate_cycles")
        tp0 = data["throughput"]
        lines.append(f"fabric cycles p50 {fab['cycles']['p50']:g} (estimator {est if est is not None else '-'}); "
                     f"II {tp0.get('ii_cycles') or '-'} cycles (estimator {tp0.get('estimate_ii_cycles') or '-'})")
    tp = data["throughput"]
    lines.append(f"throughput @ batch {tp['batch']}: fabric {_fmt_rate(tp['fabric_ips'])}, call {_fmt_rate(tp['call_ips'])}, "
                 f"end to end {_fmt_rate(tp['end_to_end_ips'])}")
    e = data["energy"]
    if e["kind"] == "measured":
        lines.append(f"energy (measured, rails {'+'.join(e['rails'])}): P_idle {e['p_idle_w']:.3f} W, "
                     f"P_active {e['p_active_w']:.3f} W; E_dyn {_fmt_j(e['e_dyn_j'])}, E_total {_fmt_j(e['e_total_j'])} per inference")
    elif e["kind"] == "estimate":
        lines.append(f"energy (ESTIMATE: power model, {e['resources']['source']} resources, activity "
                     f"{e['activity']['source']}): P_dyn {e['dynamic_w'] * 1e3:.3g} mW, P_static {e['static_w']:.3g} W; "
                     f"E_dyn {_fmt_j(e['e_dyn_j'])}, E_total {_fmt_j(e['e_total_j'])} per inference (streaming)")
    else:
        lines.append("energy: not requested (use --power)")
    comparison = data["seed_comparison"]
    if comparison.get("applicable"):
        seed, ours = comparison["seed"], comparison["ours"]
        lines.append(f"seed design: {_fmt_s(seed['latency_s'])} / {_fmt_j(seed['energy_j'])} per inference ({seed['method']})")
        lines.append(f"qmlp:        {_fmt_s(ours['latency_s'])} end-to-end p50 ({ours['latency_how']}) / "
                     f"{_fmt_j(ours['energy_j'])} ({ours['energy_kind']})")
    return "\n".join(lines)


def reproduce(report_dir: str | Path) -> dict[str, float]:
    """Recompute the headline numbers of ``report_dir/profile.json`` from the files it names.

    Guarantees: returns ``{dotted key: recomputed value}``; raises ConfigError if a named file is
    missing or changed. The caller compares with the JSON (tests do, bit for bit)."""
    report_dir = Path(report_dir)
    data = json.loads((report_dir / "profile.json").read_text())
    check_schema(data)
    files = data["files"]
    out: dict[str, float] = {}
    samples, warmup = read_samples_csv(_resolve(files["latency_samples"], report_dir))
    for name in ("fabric", "call", "end_to_end"):
        if f"{name}_s" in samples:
            stats = latency_stats(samples[f"{name}_s"], warmup=warmup)
            out[f"latency.{name}.seconds.p50_s"] = stats.p50_s
            out[f"latency.{name}.seconds.p99_s"] = stats.p99_s
            out[f"latency.{name}.seconds.max_s"] = stats.max_s
    energy = data["energy"]
    if energy["kind"] == "measured":
        trace = read_rail_csv(_resolve(files["rail_trace"], report_dir))
        result = energy_per_inference(phase_stats(trace, 0, settle_s=energy["settle_s"]),
                                      phase_stats(trace, 1, settle_s=energy["settle_s"]),
                                      inferences=int(trace.metadata["inferences"]),
                                      active_seconds=float(trace.metadata["active_seconds"]),
                                      rails=tuple(energy["rails"]))
        out["energy.e_dyn_j"], out["energy.e_total_j"] = result.e_dyn_j, result.e_total_j
    elif energy["kind"] == "estimate":
        from .power_model import Activity, estimate_power, model_for_part, resources_from_report

        res_path = _resolve(files["resources"], report_dir)
        resources = resources_from_report(json.loads(res_path.read_text()), source=energy["resources"]["source"],
                                          path=energy["resources"]["path"])
        act = json.loads(_resolve(files["activity"], report_dir).read_text())
        activity = Activity(logic_toggle=act["logic_toggle"], register_toggle=act["register_toggle"],
                            bram_enable=act["bram_enable"], dsp_enable=act["dsp_enable"], source=act["source"])
        est = estimate_power(resources, activity, clock_mhz=data["design"]["clock_mhz"],
                             ii_cycles=energy["ii_cycles"], model=model_for_part(energy["part_number"]))
        out["energy.e_dyn_j"], out["energy.e_total_j"] = est.e_dyn_j, est.e_total_j
    return out


def check_report(report_dir: str | Path) -> list[str]:
    """Compare ``reproduce`` with profile.json; returns one line per number, prefixed ``ok`` or
    ``MISMATCH`` (bit-for-bit equality: the same files through the same arithmetic)."""
    report_dir = Path(report_dir)
    path = report_dir / "profile.json"
    if not path.is_file():
        raise ConfigError(f"{path}: no profile report; run 'qmlp profile' first")
    data = json.loads(path.read_text())
    lines = []
    for dotted, value in reproduce(report_dir).items():
        found, stored = _lookup(data, dotted)
        status = "ok" if found and stored == value else "MISMATCH"
        lines.append(f"{status:<8} {dotted} = {stored!r} (recomputed {value!r})")
    return lines
