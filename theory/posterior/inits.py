"""Initial laws of the posterior chains: ``standard-normal``, ``prior`` or ``point:V``
(all coordinates V, or ``point:V1,...,Vd``), as samples (torch) or as masses on a grid."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..checks import integer, numbers
from ..priors import Prior
from .grid_base import DTYPE, eval_on_points, normalise_log

__all__ = ["init_samples", "point_init", "init_mass"]


POINT_MAX = 1e6           # as the observations (theory.posterior.likelihoods.Y_MAX)


def init_samples(kind: str, prior: Prior, n: int, generator: Optional[torch.Generator] = None,
                 device=None) -> torch.Tensor:
    """Initial DPnP iterates: ``standard-normal``, ``prior`` or ``point:V`` (all coordinates
    V, or comma-separated per coordinate)."""
    device = torch.device(device) if device is not None else prior.device
    n = integer("n", n, lo=1)
    if kind == "standard-normal":
        return torch.randn(n, prior.dim, generator=generator, dtype=DTYPE, device=device)
    if kind == "prior":
        return prior.sample(n, generator=generator).to(device)
    if isinstance(kind, str) and kind.startswith("point:"):
        v = point_init(kind, prior.dim)
        return torch.as_tensor(v, dtype=DTYPE, device=device)[None].repeat(n, 1)
    raise ValueError(f"unknown init {kind!r}; use standard-normal, prior or point:V")


def point_init(kind: str, dim: int) -> np.ndarray:
    """The point of a ``point:V[,V2,...]`` init, shape (dim,)."""
    try:
        vals = numbers("point init", kind.split(":", 1)[1], lo=-POINT_MAX, hi=POINT_MAX)
    except ValueError:
        raise ValueError(f"bad point init {kind!r}: use point:V or point:V1,...,Vd with "
                         f"finite values in [-{POINT_MAX:g}, {POINT_MAX:g}]") from None
    if len(vals) == 1:
        vals = vals * dim
    if len(vals) != dim:
        raise ValueError(f"point init needs 1 or d = {dim} finite values, got {len(vals)}")
    return np.asarray(vals, dtype=np.float64)


def init_mass(init: str, x: np.ndarray, prior: Optional[Prior] = None) -> np.ndarray:
    """Masses of an init law on the grid ``x``: ``standard-normal`` or ``prior``."""
    if init == "standard-normal":
        return normalise_log(-0.5 * x ** 2)
    if init == "prior":
        if prior is None:
            raise ValueError("the prior init needs the prior")
        return normalise_log(eval_on_points(prior.log_prob, x))
    raise ValueError(f"unknown init {init!r}; use standard-normal, prior or point:V")
