"""The interface between the board agent and what actually runs inferences (a board, or the RTL).

The agent owns the protocol, the checks on every request and the work folder; a backend only
loads an already-verified design folder and turns integer input vectors into integer output
vectors, with the timing it can honestly measure. Backends are plain classes so the agent can be
tested against any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..ir import Dataflow
from .protocol import HilError

__all__ = ["RunOutput", "Backend", "BackendError", "NoRails"]


class BackendError(HilError):
    """The backend could not run the request (tool failure, driver error, missing files)."""


class NoRails(BackendError):
    """Power measurement requested where no power rails exist (e.g. the virtual board)."""


@dataclass(frozen=True, eq=False)
class RunOutput:
    """One accelerator call.

    ``outputs``: int64 (batch, out) integers as they leave the fabric. ``timings``: JSON-ready
    numbers, at least ``wall_s`` (host seconds around the call); the virtual board adds
    ``cycles`` (whole call) and ``modelled_s`` (cycles at the board clock). ``counters``: the
    hardware counters for this call (``inferences`` completed during it, ``last_latency_cycles``).
    ``latency_cycles``: per-inference cycles when the backend can measure them."""

    outputs: np.ndarray
    timings: Mapping[str, float] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    latency_cycles: np.ndarray | None = None


class Backend(ABC):
    """What the agent drives. Calls come from one thread at a time (the agent serialises jobs)."""

    name: str = "abstract"

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for HELLO: ``board``, ``rails`` (list of names), ``clock_mhz``, ``engine``."""

    @abstractmethod
    def required_files(self, df: Dataflow) -> tuple[str, ...]:
        """Relative names (besides dataflow.json) a design upload must contain; prefixes ending
        in '/' mean "at least one file under this folder"."""

    @abstractmethod
    def load(self, design_dir: Path, df: Dataflow) -> dict[str, Any]:
        """Make ``design_dir`` (verified, inside the work folder) the active design."""

    @abstractmethod
    def run(self, q: np.ndarray) -> RunOutput:
        """Integer inputs (batch, features), already range-checked, through the design."""

    def reset(self) -> None:
        """Return the hardware to its post-load state (clear counters, flush streams)."""

    def power(self, action: str, label: str | None = None, interval_s: float = 0.1) -> dict[str, Any]:
        """``start`` / ``mark`` / ``stop`` a power-rail recording; ``stop`` returns the trace."""
        raise NoRails(f"backend {self.name!r} has no power rails")

    def close(self) -> None:
        """Release the hardware."""
