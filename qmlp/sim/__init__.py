"""Simulation: the bit-accurate IR model (``bitaccurate``), RTL simulation and verification."""

from .bitaccurate import SimResult, simulate

__all__ = ["SimResult", "simulate"]
