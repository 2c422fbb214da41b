r"""Annealing schedules of DPnP's outer steps (THEORY.md section 6).

:func:`make_annealing`: ``constant``, ``reference`` (the official
code: :math:`\eta_{max}` for ``k_start`` steps, then ``k`` levels geometric from
:math:`\eta_{max}` to :math:`\eta_{min}`, defaults 0.4, 0.16, 4, 12), ``geometric``,
``polynomial`` (:math:`\eta_k = \max(\eta_{min}, \eta_{max}(1+k)^{-p})`) and ``list``.

"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..checks import check_memory, integer, positive

__all__ = ["AnnealingSchedule", "ANNEALINGS", "make_annealing", "parse_annealing"]


@dataclass(frozen=True)
class AnnealingSchedule:
    """The levels :math:`\\eta_0, \\dots, \\eta_{K-1}` of the K outer steps."""

    etas: np.ndarray
    name: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        e = np.asarray(self.etas, dtype=np.float64).reshape(-1)
        if e.size < 1:
            raise ValueError("an annealing schedule needs at least one level")
        if not np.all(np.isfinite(e)) or np.any(e <= 0):
            raise ValueError("every annealing level eta_k must be a positive finite number")
        object.__setattr__(self, "etas", e)

    @property
    def K(self) -> int:
        return int(self.etas.size)

    @property
    def constant(self) -> bool:
        return bool(np.all(self.etas == self.etas[0]))

    def describe(self) -> dict:
        return {"name": self.name, "K": self.K, **self.params,
                "etas": [float(e) for e in self.etas]}

ANNEALINGS = ("constant", "reference", "geometric", "polynomial", "list")


def make_annealing(name: str, K: Optional[int] = None, *, eta: float = 0.3,
                   eta_max: float = 0.4, eta_min: float = 0.16, k_start: int = 4,
                   k: int = 12, power: float = 0.5, etas=None) -> AnnealingSchedule:
    r"""Build an annealing schedule (module docstring).

    ``constant``: K levels equal to ``eta``. ``reference``: ``k_start`` levels at
    ``eta_max`` then ``exp(linspace(log eta_max, log eta_min, k))`` (K = k_start + k; a given
    K must agree). ``geometric``: ``eta_max (eta_min/eta_max)^(j/(K-1))``, j = 0..K-1.
    ``polynomial``: ``max(eta_min, eta_max (1+j)^(-power))``. ``list``: the given ``etas``.
    """
    if name == "constant":
        K = _check_K(K if K is not None else 1)
        e = positive("eta", eta)
        return AnnealingSchedule(np.full(K, e), name, {"eta": e})
    if name == "reference":
        ks, kk = integer("k_start", k_start, lo=0), integer("k", k, lo=1)
        _check_K(ks + kk)
        emax, emin = _levels(eta_max, eta_min)
        if K is not None and integer("K", K, lo=1) != ks + kk:
            raise ValueError(f"the reference schedule has k_start + k = {ks + kk} steps, "
                             f"but K = {K} was asked")
        e = np.concatenate([np.full(ks, emax), np.exp(np.linspace(np.log(emax), np.log(emin), kk))])
        return AnnealingSchedule(e, name, {"eta_max": emax, "eta_min": emin, "k_start": ks, "k": kk})
    if name == "geometric":
        K = _check_K(K if K is not None else 16)
        emax, emin = _levels(eta_max, eta_min)
        j = np.arange(K) / max(K - 1, 1)
        return AnnealingSchedule(emax * (emin / emax) ** j, name,
                                 {"eta_max": emax, "eta_min": emin})
    if name == "polynomial":
        K = _check_K(K if K is not None else 16)
        (emax, emin), p = _levels(eta_max, eta_min), positive("power", power)
        e = np.maximum(emin, emax * (1.0 + np.arange(K)) ** (-p))
        return AnnealingSchedule(e, name, {"eta_max": emax, "eta_min": emin, "power": p})
    if name == "list":
        if etas is None:
            raise ValueError("the list schedule needs its levels (etas)")
        e = np.asarray([positive("eta", v) for v in etas], dtype=np.float64)
        if K is not None and integer("K", K, lo=1) != e.size:
            raise ValueError(f"the list has {e.size} levels, but K = {K} was asked")
        return AnnealingSchedule(e, name, {})
    raise ValueError(f"unknown annealing schedule {name!r}; choose from {', '.join(ANNEALINGS)}")


def _check_K(K) -> int:
    """The number of levels, an int >= 1 whose levels fit in memory."""
    K = integer("K", K, lo=1)
    check_memory(16 * K, f"K = {K} annealing levels")
    return K


def _levels(eta_max, eta_min):
    """``(eta_max, eta_min)``, positive, and not rising: annealing lowers eta."""
    emax, emin = positive("eta_max", eta_max), positive("eta_min", eta_min)
    if emax < emin:
        raise ValueError(f"eta_max = {emax:g} is below eta_min = {emin:g}: annealing lowers "
                         f"eta from eta_max to eta_min (swap the two values)")
    return emax, emin


def parse_annealing(spec: str, K: Optional[int] = None) -> AnnealingSchedule:
    """Parse ``NAME[:a,b,...]``: ``constant:ETA``, ``reference[:ETA_MAX,ETA_MIN,K_START,K]``,
    ``geometric[:ETA_MAX,ETA_MIN]``, ``polynomial[:ETA_MAX,ETA_MIN,POWER]``,
    ``list:E0,E1,...`` (K from ``K`` where the schedule needs it)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty annealing schedule")
    name, _, rest = spec.strip().partition(":")
    vals = [v for v in rest.split(",") if v.strip()] if rest else []
    keys = {"constant": ["eta"], "reference": ["eta_max", "eta_min", "k_start", "k"],
            "geometric": ["eta_max", "eta_min"], "polynomial": ["eta_max", "eta_min", "power"]}
    if name == "list":
        return make_annealing("list", K, etas=vals)
    if name not in keys:
        raise ValueError(f"unknown annealing schedule {name!r}; choose from {', '.join(ANNEALINGS)}")
    if len(vals) > len(keys[name]):
        raise ValueError(f"schedule {name} takes at most {len(keys[name])} values "
                         f"({','.join(keys[name])}), got {len(vals)}")
    kw = dict(zip(keys[name], vals))
    return make_annealing(name, K, **kw)
