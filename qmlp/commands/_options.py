"""Range checks for numeric command-line values, shared by the commands: a typo such as
``--samples 100000000000`` or ``--seed -1`` is one line and exit 2, not an allocation or a
traceback from deep inside numpy."""

from __future__ import annotations

import math

from ..errors import ConfigError

__all__ = ["SEED_MAX", "in_range"]

SEED_MAX = 2**63 - 1  # numpy's default_rng takes 0..2**128; int64 keeps seeds printable and portable


def in_range(option: str, value: float, lo: float, hi: float, hint: str = "") -> None:
    """ConfigError unless ``lo <= value <= hi`` (NaN and infinities fail)."""
    if not (isinstance(value, (int, float)) and not math.isnan(value) and lo <= value <= hi):
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        high = "2**63-1" if hi == SEED_MAX else f"{hi:,g}" if isinstance(hi, float) else f"{hi:,}"
        raise ConfigError(f"{option} {shown}: must be between {lo:,} and {high}{hint}")
