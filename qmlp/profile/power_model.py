"""Power estimate without a board: resource counts x switching activity x per-resource coefficients.

Model (the usual CMOS form, per resource class):

* logic and register nets: ``P = 1/2 * C * V^2 * f * alpha`` per LUT / FF output, with ``alpha``
  the measured transitions per bit per cycle (RTL simulation toggle counts);
* clock tree: ``P = C_clk * V^2 * f`` per FF clock pin (two transitions every cycle) plus a fixed
  share for the global buffer and spine;
* block RAM and DSP: energy per access x accesses per second (``enable`` rate per cycle);
* package I/O: none — the accelerator's ports are AXI to the PS inside the device;
* static: the part's leakage at 25 C junction, a per-part constant.

Every coefficient carries its source. None of these numbers is a vendor-published per-resource
figure (Xilinx publishes the method in UG440 *Xilinx Power Estimator* and the supply voltages in
the data sheets, not coefficients), so the capacitances, energies and static powers are
*assumptions*, sized to land near what XPE reports for comparable designs at its default 12.5 %
toggle rate; the supply voltages are data-sheet values. The result is always an estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

from ..errors import ConfigError

__all__ = [
    "Coefficient", "PowerModel", "Resources", "Activity", "PowerEstimate", "MODELS", "model_for_part",
    "estimate_power", "DEFAULT_TOGGLE", "resources_from_report",
]

DEFAULT_TOGGLE = 0.125  # XPE's default toggle rate, used when no RTL activity was measured


@dataclass(frozen=True)
class Coefficient:
    value: float
    unit: str
    source: str
    assumption: bool = True

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PowerModel:
    """Coefficients for one device family / part."""

    name: str
    vccint: Coefficient
    static: Coefficient
    lut_c: Coefficient
    ff_c: Coefficient
    clock_c: Coefficient
    clock_fixed: Coefficient
    bram_access: Coefficient
    dsp_op: Coefficient
    io: Coefficient

    def coefficients(self) -> dict[str, dict[str, object]]:
        return {name: getattr(self, name).to_json() for name in
                ("vccint", "static", "lut_c", "ff_c", "clock_c", "clock_fixed", "bram_access", "dsp_op", "io")}


_ASSUMED_C = ("assumption: effective switched capacitance of the output net including typical local "
              "routing, sized so 10k LUTs at 100 MHz and 12.5 % toggle land near XPE-like figures")
_NO_IO = Coefficient(0.0, "W", "the accelerator has no package pins; PS-PL AXI power is in the PS rails", False)


def _ultrascale_plus(name: str, vccint: float, vccint_source: str, static_w: float) -> PowerModel:
    return PowerModel(
        name=name,
        vccint=Coefficient(vccint, "V", vccint_source, False),
        static=Coefficient(static_w, "W", "assumption: PL leakage at Tj = 25 C, typical process, "
                           "order of magnitude of XPE for this part", True),
        lut_c=Coefficient(0.30e-12, "F", _ASSUMED_C + " (16 nm FinFET)"),
        ff_c=Coefficient(0.25e-12, "F", _ASSUMED_C + " (16 nm FinFET)"),
        clock_c=Coefficient(0.015e-12, "F", "assumption: clock leaf load per FF clock pin incl. its share of "
                            "the leaf route"),
        clock_fixed=Coefficient(10e-6, "W/MHz", "assumption: one BUFGCE and the clock spine of a small region"),
        bram_access=Coefficient(15e-12, "J", "assumption: energy of one BRAM36 read of a full-width word"),
        dsp_op=Coefficient(5e-12, "J", "assumption: energy of one DSP48E2 multiply-add at full toggle"),
        io=_NO_IO,
    )


def _zynq7000(name: str, static_w: float) -> PowerModel:
    return PowerModel(
        name=name,
        vccint=Coefficient(1.0, "V", "DS187 Zynq-7000 data sheet: VCCINT nominal 1.0 V", False),
        static=Coefficient(static_w, "W", "assumption: PL leakage at Tj = 25 C, typical process, "
                           "order of magnitude of XPE for this part", True),
        lut_c=Coefficient(0.45e-12, "F", _ASSUMED_C + " (28 nm)"),
        ff_c=Coefficient(0.35e-12, "F", _ASSUMED_C + " (28 nm)"),
        clock_c=Coefficient(0.02e-12, "F", "assumption: clock leaf load per FF clock pin incl. its share of "
                            "the leaf route"),
        clock_fixed=Coefficient(15e-6, "W/MHz", "assumption: one BUFG and the clock spine of a small region"),
        bram_access=Coefficient(30e-12, "J", "assumption: energy of one RAMB36E1 read of a full-width word"),
        dsp_op=Coefficient(10e-12, "J", "assumption: energy of one DSP48E1 multiply-add at full toggle"),
        io=_NO_IO,
    )


_DS925 = "DS925 Zynq UltraScale+ MPSoC data sheet: VCCINT nominal 0.85 V (-1/-2 speed grades)"
_DS925_LV = "DS925 Zynq UltraScale+ MPSoC data sheet: VCCINT nominal 0.72 V for -2LV parts"

# Keyed by the part-name prefix (as in the board files).
MODELS: dict[str, PowerModel] = {
    "xczu7ev": _ultrascale_plus("xczu7ev", 0.85, _DS925, 0.60),
    "xck26": _ultrascale_plus("xck26 (-2LV)", 0.72, _DS925_LV, 0.40),
    "xczu3eg": _ultrascale_plus("xczu3eg", 0.85, _DS925, 0.30),
    "xc7z020": _zynq7000("xc7z020", 0.12),
}


def model_for_part(part: str) -> PowerModel:
    for prefix, model in MODELS.items():
        if part.lower().startswith(prefix):
            return model
    raise ConfigError(f"no power model for part {part!r}; known parts: {', '.join(MODELS)}")


@dataclass(frozen=True)
class Resources:
    """Resource counts and where they came from (``synth`` = Yosys netlist, ``estimate`` = model)."""

    lut: int
    ff: int
    bram36: float
    dsp: int
    source: str
    path: str = ""


@dataclass(frozen=True)
class Activity:
    """Switching activity while streaming.

    ``logic_toggle``/``register_toggle``: transitions per bit per cycle; ``bram_enable``/``dsp_enable``:
    accesses per block per cycle; ``source`` says whether they were measured in RTL simulation."""

    logic_toggle: float
    register_toggle: float
    bram_enable: float
    dsp_enable: float
    source: str
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PowerEstimate:
    """Watts per component, total, and energy per inference at the streaming rate."""

    part: str
    clock_mhz: float
    components_w: Mapping[str, float]
    static_w: float
    dynamic_w: float
    total_w: float
    ii_cycles: int
    e_dyn_j: float  # dynamic power x one initiation interval: energy per inference while streaming
    e_total_j: float  # (static + dynamic) x one initiation interval
    resources: Resources
    activity: Activity
    assumptions: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["assumptions"] = list(self.assumptions)
        return data


def estimate_power(resources: Resources, activity: Activity, *, clock_mhz: float, ii_cycles: int,
                   model: PowerModel) -> PowerEstimate:
    """Dynamic + static power of the accelerator while it streams one inference per ``ii_cycles``.

    Expects: counts of the accelerator alone (no DMA or PS), activity measured while streaming.
    Guarantees: every term of the model appears in ``components_w``; the assumptions list names
    where resources and activity came from and every coefficient that is an assumption."""
    if not clock_mhz > 0 or ii_cycles < 1:
        raise ConfigError(f"power estimate needs clock > 0 MHz and II >= 1 cycle, got {clock_mhz}, {ii_cycles}")
    f = clock_mhz * 1e6
    v2 = model.vccint.value ** 2
    components = {
        "logic": 0.5 * model.lut_c.value * v2 * f * activity.logic_toggle * resources.lut,
        "registers": 0.5 * model.ff_c.value * v2 * f * activity.register_toggle * resources.ff,
        "clock": model.clock_c.value * v2 * f * resources.ff + model.clock_fixed.value * clock_mhz,
        "bram": model.bram_access.value * f * activity.bram_enable * resources.bram36,
        "dsp": model.dsp_op.value * f * activity.dsp_enable * resources.dsp,
        "io": model.io.value,
    }
    dynamic = sum(components.values())
    static = model.static.value
    period = ii_cycles / f
    assumptions = [
        f"resources from {resources.source}" + (f" ({resources.path})" if resources.path else ""),
        f"switching activity: {activity.source}",
        "logic nets assumed to toggle at the measured rate of the design's signals; glitches ignored",
        "energy per inference = power x one initiation interval (the accelerator streaming back to back)",
        "accelerator only: DMA, interconnect, PS and DDR power are not in this estimate",
    ]
    assumptions += [f"{name}: {coef.value:g} {coef.unit} — {coef.source}" for name, coef in
                    ((n, getattr(model, n)) for n in ("vccint", "static", "lut_c", "ff_c", "clock_c", "clock_fixed",
                                                      "bram_access", "dsp_op", "io"))]
    return PowerEstimate(part=model.name, clock_mhz=float(clock_mhz), components_w=components,
                         static_w=static, dynamic_w=dynamic, total_w=static + dynamic, ii_cycles=int(ii_cycles),
                         e_dyn_j=dynamic * period, e_total_j=(static + dynamic) * period,
                         resources=resources, activity=activity, assumptions=tuple(assumptions))


def _count(data: Mapping[str, object], *keys: str) -> float | None:
    for key in keys:
        if key in data and data[key] is not None:
            return float(data[key])  # type: ignore[arg-type]
    return None


def resources_from_report(data: Mapping[str, object], *, source: str, path: str = "") -> Resources:
    """Resources from a report dict: FINN-style keys (LUT, FF, BRAM_18K or BRAM36 [+ BRAM18], DSP), at
    the top level or under ``total``. Yosys' LUTRAM counts as LUTs (it occupies and toggles LUT
    sites); CARRY cells are not counted apart (their nets belong to the adders' LUTs)."""
    block = data.get("total", data)
    if not isinstance(block, Mapping):
        raise ConfigError(f"{path or source}: no resource totals (expected LUT/FF/BRAM/DSP keys)")
    lut = _count(block, "LUT")
    ff = _count(block, "FF")
    if lut is None or ff is None:
        raise ConfigError(f"{path or source}: missing LUT or FF count; re-run 'qmlp compile' to regenerate it")
    # Yosys reports BRAM36 and BRAM18 cells apart; FINN-style files give BRAM_18K only.
    bram36 = (_count(block, "BRAM36") or 0.0) + (_count(block, "BRAM18") or 0.0) / 2
    if _count(block, "BRAM36") is None:
        bram36 += (_count(block, "BRAM_18K") or 0.0) / 2
    lutram = _count(block, "LUTRAM") or 0.0
    return Resources(lut=int(lut + lutram), ff=int(ff), bram36=float(bram36), dsp=int(_count(block, "DSP") or 0),
                     source=source, path=path)
