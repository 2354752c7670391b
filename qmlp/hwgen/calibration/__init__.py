"""Calibration data of the cost and timing models, one JSON file per family (``xcup.json``,
``xc7.json``), written by ``bench/calibrate.py`` from Yosys runs on a generated sweep."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["CALIBRATION_DIR", "load_calibration"]

CALIBRATION_DIR = Path(__file__).parent


@lru_cache(maxsize=None)
def load_calibration(family: str) -> dict[str, Any]:
    """The recorded calibration of ``family``, or {} when there is none."""
    path = CALIBRATION_DIR / f"{family}.json"
    return json.loads(path.read_text()) if path.is_file() else {}
