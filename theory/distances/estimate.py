r"""The result of every distance computation: value, interval, method.

``lower <= true value <= upper`` holds up to the error model named in ``method``: a
numerical error bound (exact engines, by refinement) or a confidence interval (Monte Carlo,
bootstrap); ``details`` holds what the method needs to be checked (floors, sample sizes,
resolutions).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["DistanceEstimate"]


@dataclass
class DistanceEstimate:
    """A distance with its numerical uncertainty.

    ``lower <= true value <= upper`` up to the error model named in ``method``
    (``error`` is the half-width used).
    """

    metric: str
    value: float
    lower: float
    upper: float
    method: str
    error: float = 0.0
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
