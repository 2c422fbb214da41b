r"""Steps of Markov chains whose laws the grid engines compute exactly (THEORY.md section 8).

A chain is a list of steps (time-inhomogeneous chains allowed; repeating one step object
marks a homogeneous stretch, which the engines build once and reuse). Two kinds of step:

* :class:`GaussianStep` ``(map, noise_std)``: :math:`x' = m(x) + c\,Z`,
  :math:`Z \sim N(0, I_d)`. ULA, every DDPM/DDIM-type step of a diffusion sampler, the
  reverse-SDE DDS, DPS and the other guided steps of THEORY.md section 7 are of this form;
  ``noise_std = 0`` is a deterministic map (which may fold or jump: the 1-D engine splits it
  into monotone pieces and conserves mass).
* :class:`MetropolisStep` ``(proposal_map, noise_std, log_target)``: propose
  :math:`x' = m(x) + c\,Z` and accept with probability
  :math:`\min\big(1, \tfrac{\pi(x')\,q(x \mid x')}{\pi(x)\,q(x' \mid x)}\big)`,
  :math:`q(b \mid a) = N(b; m(a), \mathrm{diag}(c^2))`; a rejected proposal leaves the
  state where it is (MALA with the Langevin mean, or any Gaussian-proposal Metropolis-Hastings
  step).

Conventions for the callables: ``map``, ``proposal_map`` take float64 numpy points of shape
(n, d) and return (n, d); ``log_target`` takes (n, d) and returns (n,) (up to a constant).
``noise_std`` is a float >= 0 or an array (d,) (per coordinate). The engines differentiate
maps numerically (central differences) where they need a slope; an optional ``derivative``
(1-D: ``(n, 1) -> (n, 1)``, the map's derivative) is used instead when given.

Chains whose state is larger than the variable the engine tracks (DPnP's Langevin PCS: the
inner chain in z depends on the outer iterate x_k as its centre) use the conditional forms
:class:`ConditionalGaussianStep` and :class:`ConditionalMetropolisStep`, whose callables take
``(points (n, d), centres (n, d))``; :func:`theory.posterior.chains1d.chain_kernel_1d` turns
a list of them into the transition kernel from the centre to the chain's state after each
chosen number of steps (one row per centre), which then acts like any other grid kernel.

Engines: :func:`theory.posterior.chains1d.chain_laws_1d` (1-D),
:func:`theory.posterior.chains2d.chain_laws_2d` (2-D), and the conditional 1-D kernel above.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np

__all__ = ["GaussianStep", "MetropolisStep", "ConditionalGaussianStep",
           "ConditionalMetropolisStep", "Step", "noise_vector"]


def noise_vector(noise_std, d: int) -> np.ndarray:
    """``noise_std`` (float or (d,)) as a float64 array (d,), checked non-negative and finite."""
    c = np.asarray(noise_std, dtype=np.float64)
    if c.ndim == 0:
        c = np.full(d, float(c))
    if c.shape != (d,):
        raise ValueError(f"noise_std must be a number or have shape ({d},), got {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("noise_std must be finite and non-negative")
    return c


def _check_noise(noise_std):
    c = np.asarray(noise_std, dtype=np.float64)
    if c.ndim > 1 or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("noise_std must be a non-negative number or a 1-D array of them")
    return float(c) if c.ndim == 0 else c



def _proposal_noise(noise_std):
    """A Metropolis proposal's noise scale: :func:`_check_noise`, and positive."""
    c = _check_noise(noise_std)
    if np.any(np.asarray(c) <= 0):
        raise ValueError("a Metropolis step needs a positive proposal noise_std")
    return c

@dataclass(frozen=True, eq=False)
class GaussianStep:
    r""":math:`x' = \mathrm{map}(x) + \mathrm{noise\_std}\cdot Z` (module docstring).

    Parameters
    ----------
    map : callable, (n, d) float64 -> (n, d)
    noise_std : float >= 0 or array (d,)
    name : str
    derivative : callable, optional
        1-D only: the map's derivative, (n, 1) -> (n, 1) (default: central differences).
    """

    map: Callable[[np.ndarray], np.ndarray]
    noise_std: Union[float, np.ndarray]
    name: str = ""
    derivative: Optional[Callable[[np.ndarray], np.ndarray]] = None

    def __post_init__(self):
        object.__setattr__(self, "noise_std", _check_noise(self.noise_std))


@dataclass(frozen=True, eq=False)
class MetropolisStep:
    r"""Gaussian-proposal Metropolis-Hastings step (module docstring).

    Parameters
    ----------
    proposal_map : callable, (n, d) -> (n, d)
        Mean of the proposal from the current point (MALA: the Langevin step's mean).
    noise_std : float > 0 or array (d,)
    log_target : callable, (n, d) -> (n,)
        Log density of the invariant law, up to a constant.
    """

    proposal_map: Callable[[np.ndarray], np.ndarray]
    noise_std: Union[float, np.ndarray]
    log_target: Callable[[np.ndarray], np.ndarray]
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "noise_std", _proposal_noise(self.noise_std))


@dataclass(frozen=True, eq=False)
class ConditionalGaussianStep:
    """:class:`GaussianStep` whose map also sees the chain's centre:
    ``map(points (n, d), centres (n, d)) -> (n, d)``."""

    map: Callable[[np.ndarray, np.ndarray], np.ndarray]
    noise_std: Union[float, np.ndarray]
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "noise_std", _check_noise(self.noise_std))


@dataclass(frozen=True, eq=False)
class ConditionalMetropolisStep:
    """:class:`MetropolisStep` whose proposal mean and target see the chain's centre:
    ``proposal_map(points, centres) -> (n, d)``, ``log_target(points, centres) -> (n,)``."""

    proposal_map: Callable[[np.ndarray, np.ndarray], np.ndarray]
    noise_std: Union[float, np.ndarray]
    log_target: Callable[[np.ndarray, np.ndarray], np.ndarray]
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "noise_std", _proposal_noise(self.noise_std))


Step = Union[GaussianStep, MetropolisStep]
