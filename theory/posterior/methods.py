"""The registry of posterior samplers (THEORY.md section 7): name -> class, and
:func:`make_method` (name + knobs -> configured sampler). Every method runs through the one
interface of :mod:`theory.posterior.interface`."""
from __future__ import annotations

from .gibbs import DPnP, PnPDM
from .guided import DPS, DiffPIR, MomentMatching, PiGDM
from .interface import PosteriorSampler
from .langevin import DAPS, ScoreALD
from .smc import TDS, MCGdiff
from .variational import DMPlug, REDDiff

__all__ = ["METHODS", "make_method", "method_names"]


class DMPlugFixed(DMPlug):
    """DMPlug with a fixed iteration count (no early stopping)."""

    name = "dmplug-fixed"
    KNOBS = {k: v for k, v in DMPlug.KNOBS.items() if k not in ("window", "patience", "stopping")}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.knobs.update(stopping="fixed", window=1, patience=1)


METHODS = {c.name: c for c in (DPS, ScoreALD, DiffPIR, PiGDM, MomentMatching, REDDiff, DMPlug,
                               DMPlugFixed, TDS, MCGdiff, DAPS, PnPDM, DPnP)}


def method_names():
    return tuple(METHODS)


def make_method(name: str, **knobs) -> PosteriorSampler:
    """A configured sampler: ``make_method("dps", zeta=0.3)``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name](**knobs)
