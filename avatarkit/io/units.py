"""Length units: files in other units are converted to metres on read; metrics are reported in
any of them (standard library only, cheap to import)."""

from __future__ import annotations

METRES_PER_UNIT = {"m": 1.0, "cm": 0.01, "mm": 0.001}
"""Metres in one unit of each name."""
UNIT_NAMES = tuple(METRES_PER_UNIT)


def per_metre(unit: str) -> float:
    """How many ``unit`` make a metre (100 for ``cm``): the factor metres are reported with."""
    return 1.0 / METRES_PER_UNIT[unit]
