"""What qmlp knows about the two Zynq processing-system IPs: which CONFIG properties enable a port,
set its width or set a fabric clock. Vendor knowledge lives here once; board files only name ports.

The names are the Vivado IP-integrator names (``zynq_ultra_ps_e`` for Zynq UltraScale+ MPSoC,
``processing_system7`` for Zynq-7000)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

__all__ = ["PsSpec", "PS_SPECS", "ps_properties"]


@dataclass(frozen=True)
class PsSpec:
    """One PS IP: ``dma_ports`` maps a slave port to its (enable, data-width) CONFIG keys,
    ``control_ports`` a master port to its enable key, ``clocks`` a fabric clock pin to its
    (enable, requested-MHz, actual-MHz) keys; ``resets`` pairs each clock with its reset pin."""

    ip: str
    families: tuple[str, ...]
    dma_ports: Mapping[str, tuple[str, str]]
    dma_widths: tuple[int, ...]
    control_ports: Mapping[str, str]
    clocks: Mapping[str, tuple[str, str, str]]
    resets: Mapping[str, str]


def _mpsoc() -> PsSpec:
    # S_AXI_HPn_FPD is SAXIGP(n+2) inside the IP; HPC0/1 are SAXIGP0/1.
    dma = {f"S_AXI_HP{n}_FPD": (f"PSU__USE__S_AXI_GP{n + 2}", f"PSU__SAXIGP{n + 2}__DATA_WIDTH") for n in range(4)}
    dma.update({f"S_AXI_HPC{n}_FPD": (f"PSU__USE__S_AXI_GP{n}", f"PSU__SAXIGP{n}__DATA_WIDTH") for n in range(2)})
    clocks = {f"pl_clk{n}": (f"PSU__FPGA_PL{n}_ENABLE", f"PSU__CRL_APB__PL{n}_REF_CTRL__FREQMHZ",
                             f"PSU__CRL_APB__PL{n}_REF_CTRL__ACT_FREQMHZ") for n in range(4)}
    return PsSpec(
        ip="zynq_ultra_ps_e", families=("xcup",), dma_ports=dma, dma_widths=(32, 64, 128),
        control_ports={"M_AXI_HPM0_FPD": "PSU__USE__M_AXI_GP0", "M_AXI_HPM1_FPD": "PSU__USE__M_AXI_GP1",
                       "M_AXI_HPM0_LPD": "PSU__USE__M_AXI_GP2"},
        clocks=clocks, resets={f"pl_clk{n}": f"pl_resetn{n}" for n in range(4)},
    )


def _zynq7() -> PsSpec:
    dma = {f"S_AXI_HP{n}": (f"PCW_USE_S_AXI_HP{n}", f"PCW_S_AXI_HP{n}_DATA_WIDTH") for n in range(4)}
    clocks = {f"FCLK_CLK{n}": (f"PCW_EN_CLK{n}_PORT", f"PCW_FPGA{n}_PERIPHERAL_FREQMHZ",
                               f"PCW_ACT_FPGA{n}_PERIPHERAL_FREQMHZ") for n in range(4)}
    return PsSpec(
        ip="processing_system7", families=("xc7",), dma_ports=dma, dma_widths=(32, 64),
        control_ports={"M_AXI_GP0": "PCW_USE_M_AXI_GP0", "M_AXI_GP1": "PCW_USE_M_AXI_GP1"},
        clocks=clocks, resets={f"FCLK_CLK{n}": f"FCLK_RESET{n}_N" for n in range(4)},
    )


PS_SPECS: Mapping[str, PsSpec] = {spec.ip: spec for spec in (_mpsoc(), _zynq7())}


def ps_properties(spec: PsSpec, *, control_port: str, dma_port: str, dma_width: int,
                  clock: str, clock_mhz: float) -> dict[str, str]:
    """The ``CONFIG.*`` properties that enable the control master, the DMA slave at its width and
    the fabric clock at ``clock_mhz``; the caller has validated the names against ``spec``."""
    enable_dma, width_key = spec.dma_ports[dma_port]
    enable_clock, freq_key, _ = spec.clocks[clock]
    return {
        f"CONFIG.{spec.control_ports[control_port]}": "1",
        f"CONFIG.{enable_dma}": "1",
        f"CONFIG.{width_key}": str(dma_width),
        f"CONFIG.{enable_clock}": "1",
        f"CONFIG.{freq_key}": _mhz(clock_mhz),
    }


def _mhz(value: float) -> str:
    """Vivado takes the frequency as a decimal string; integers print without '.0'."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
