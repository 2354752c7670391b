"""FINN's estimate reports (finn-plus, ``output/report``) beside qmlp's: copied to
``report/finn/`` and summarized side by side in ``report/summary.md``.

FINN's numbers are FINN's analytical estimates (its LUT/BRAM models and cycle formulas), qmlp's
are qmlp's; neither is a synthesis result."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..hwgen.estimate import NetworkEstimate

__all__ = ["FinnLayer", "FinnEstimate", "read_finn_estimate", "copy_finn_reports", "side_by_side_markdown"]

_REPORTS = ("estimate_layer_resources.json", "estimate_layer_cycles.json", "estimate_network_performance.json",
            "op_and_param_counts.json", "auto_folding_config.json")


@dataclass(frozen=True)
class FinnLayer:
    node: str  # FINN's node name, e.g. MVAU_hls_0, Thresholding_rtl_0
    lut: float
    bram18: float
    dsp: float
    cycles: int


@dataclass(frozen=True)
class FinnEstimate:
    layers: tuple[FinnLayer, ...]
    lut: float
    bram18: float
    dsp: float
    max_cycles: int  # FINN's II: the slowest node's cycles per frame
    latency_cycles: int  # FINN's critical path
    throughput_fps: float
    latency_ns: float

    def mvaus(self) -> tuple[FinnLayer, ...]:
        return tuple(layer for layer in self.layers if layer.node.startswith("MVAU"))


def read_finn_estimate(report_dir: Path) -> FinnEstimate:
    """Parse FINN's estimate_layer_resources / estimate_layer_cycles / estimate_network_performance."""
    resources = json.loads((report_dir / "estimate_layer_resources.json").read_text())
    cycles = json.loads((report_dir / "estimate_layer_cycles.json").read_text())
    perf = json.loads((report_dir / "estimate_network_performance.json").read_text())
    layers = tuple(FinnLayer(name, float(r.get("LUT", 0)), float(r.get("BRAM_18K", 0)), float(r.get("DSP", 0)),
                             int(cycles.get(name, 0)))
                   for name, r in resources.items() if name != "total")
    total = resources.get("total", {})
    return FinnEstimate(layers, float(total.get("LUT", 0)), float(total.get("BRAM_18K", 0)),
                        float(total.get("DSP", 0)), int(perf["max_cycles"]), int(perf["critical_path_cycles"]),
                        float(perf["estimated_throughput_fps"]), float(perf["estimated_latency_ns"]))


def copy_finn_reports(finn_output: Path, report_dir: Path) -> list[Path]:
    """FINN's report JSONs (those that exist) -> ``report_dir`` (qmlp's report/finn/)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in _REPORTS:
        source = finn_output / "report" / name
        if source.is_file():
            copied.append(Path(shutil.copyfile(source, report_dir / name)))
    return copied


def _mvau_index(node: str) -> int:
    match = re.search(r"_(\d+)$", node)
    return int(match.group(1)) if match else -1


def side_by_side_markdown(qmlp: NetworkEstimate, finn: FinnEstimate, *, finn_version: str, folding_note: str) -> str:
    """The summary.md section: per layer and in total, qmlp's estimate next to FINN's."""
    mvaus = sorted(finn.mvaus(), key=lambda layer: _mvau_index(layer.node))
    rows = ["| layer | qmlp PE x SIMD | qmlp cycles | qmlp LUT | qmlp BRAM36 | FINN node | FINN cycles | FINN LUT "
            "| FINN BRAM18 |", "|---|---|---|---|---|---|---|---|---|"]
    for index, layer in enumerate(qmlp.layers):
        f = mvaus[index] if index < len(mvaus) else None
        rows.append(f"| {layer.name} | {layer.pe} x {layer.simd} | {layer.cycles:,} | {layer.lut:,} | {layer.bram36:g} | "
                    + (f"{f.node} | {f.cycles:,} | {f.lut:,.0f} | {f.bram18:g} |" if f else "- | - | - | - |"))
    extra = [layer for layer in finn.layers if not layer.node.startswith("MVAU")]
    for layer in extra:
        rows.append(f"| (host in qmlp) | - | - | - | - | {layer.node} | {layer.cycles:,} | {layer.lut:,.0f} | "
                    f"{layer.bram18:g} |")
    extra_lut = sum(layer.lut for layer in extra)
    lines = [
        "", f"## FINN side by side ({finn_version} estimates, run here by `--backend finn`)", "",
        f"FINN folding: {folding_note}. Both columns are analytical estimates; FINN's files are in report/finn/.", "",
        *rows, "",
        "| | qmlp | FINN |", "|---|---|---|",
        f"| LUT | {qmlp.lut:,} | {finn.lut:,.0f} (of which {extra_lut:,.0f} in nodes qmlp runs on the host) |",
        f"| BRAM | {qmlp.bram36:g} BRAM36 | {finn.bram18:g} BRAM18 |",
        f"| DSP | {qmlp.dsp} | {finn.dsp:g} |",
        f"| II (cycles) | {qmlp.ii_cycles:g} | {finn.max_cycles:,} |",
        f"| throughput | {qmlp.throughput_fps:,.0f}/s | {finn.throughput_fps:,.0f}/s |",
        f"| latency | {qmlp.latency_cycles:,} cycles ({qmlp.latency_ns:,.0f} ns) | {finn.latency_cycles:,} cycles "
        f"({finn.latency_ns:,.0f} ns) |", "",
        "FINN keeps the input quantizer (Thresholding) and the output scale/bias (Elementwise nodes) in the fabric; "
        "qmlp computes them on the host (driver), so its fabric receives integers and returns accumulators.", "",
    ]
    return "\n".join(lines)
