r"""Noise schedules: the forward process of THEORY.md section 1.

The forward chain is

.. math::
    X_t = \sqrt{\alpha_t} X_{t-1} + \sqrt{1-\alpha_t} W_t, \qquad t = 1..T,
    \qquad \bar\alpha_t = \prod_{i \le t} \alpha_i .

A :class:`Schedule` holds :math:`\beta_t = 1 - \alpha_t` for ``t = 1..T`` and is the
*only* place where step indices are turned into noise levels or times. Arrays are
indexed by the step index itself: ``alpha_bar[t]`` is :math:`\bar\alpha_t`, and index 0
stands for the data (``alpha_bar[0] == 1``, ``beta[0] == 0``).

Continuous time: step ``t`` sits at time ``tau = t / T`` in ``[0, 1]``;
:meth:`Schedule.alpha_bar_at` interpolates :math:`\log\bar\alpha` linearly in ``tau``
between steps (exact at the steps) so that analytic priors can be queried at any noise
level.

References:
    Li, Wei, Chen, Chi. "Towards non-asymptotic convergence for diffusion-based generative
    models", ICLR 2024, arXiv:2306.09251 (the ``li`` schedule).
    Ho, Jain, Abbeel. "Denoising diffusion probabilistic models", NeurIPS 2020 (``linear``).
    Nichol, Dhariwal. "Improved denoising diffusion probabilistic models", ICML 2021
    (``cosine``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .checks import check_memory, integer, positive

__all__ = ["Schedule", "li_schedule", "linear_schedule", "cosine_schedule", "make_schedule",
           "SCHEDULES"]


@dataclass(frozen=True)
class Schedule:
    """A discrete noise schedule with ``T`` steps.

    Parameters
    ----------
    beta : array-like, shape (T,)
        :math:`\\beta_1, \\dots, \\beta_T`, each in (0, 1).
    name : str
        Human-readable name recorded with results.
    params : dict
        The parameters that produced it (recorded with results).
    """

    beta_steps: np.ndarray
    name: str = "custom"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        b = np.asarray(self.beta_steps, dtype=np.float64)
        if b.ndim != 1 or b.size < 2:
            raise ValueError(f"a schedule needs at least 2 steps, got shape {b.shape}")
        if not np.all(np.isfinite(b)) or np.any(b <= 0) or np.any(b >= 1):
            raise ValueError("every beta_t must lie strictly between 0 and 1")
        object.__setattr__(self, "beta_steps", b)

    # -- arrays indexed by the step t = 0..T (index 0 is the data) -----------------------
    @property
    def T(self) -> int:
        return int(self.beta_steps.size)

    @property
    def beta(self) -> np.ndarray:
        """``beta[t]`` for t = 0..T, with ``beta[0] = 0``."""
        return np.concatenate([[0.0], self.beta_steps])

    @property
    def alpha(self) -> np.ndarray:
        """``alpha[t] = 1 - beta[t]`` for t = 0..T."""
        return 1.0 - self.beta

    @property
    def log_alpha_bar(self) -> np.ndarray:
        """``log alpha_bar[t]`` for t = 0..T, accumulated in log space (no underflow)."""
        return np.concatenate([[0.0], np.cumsum(np.log1p(-self.beta_steps))])

    @property
    def alpha_bar(self) -> np.ndarray:
        """``alpha_bar[t]`` for t = 0..T, with ``alpha_bar[0] = 1``."""
        return np.exp(self.log_alpha_bar)

    @property
    def one_minus_alpha_bar(self) -> np.ndarray:
        """``1 - alpha_bar[t]`` computed without cancellation (``-expm1``)."""
        return -np.expm1(self.log_alpha_bar)

    # -- index <-> time: the one place where this conversion lives ------------------------
    def time_of(self, t):
        """Continuous time ``tau = t / T`` of step index ``t``."""
        return np.asarray(t, dtype=np.float64) / self.T

    def index_of(self, tau):
        """Nearest step index of continuous time ``tau`` in [0, 1]."""
        tau = np.asarray(tau, dtype=np.float64)
        if np.any((tau < 0) | (tau > 1)):
            raise ValueError("time must lie in [0, 1]")
        return np.rint(tau * self.T).astype(int)

    def alpha_bar_at(self, tau):
        """:math:`\\bar\\alpha` at continuous time ``tau`` (log-linear between steps)."""
        tau = np.asarray(tau, dtype=np.float64)
        if np.any((tau < 0) | (tau > 1)):
            raise ValueError("time must lie in [0, 1]")
        grid = np.arange(self.T + 1) / self.T
        return np.exp(np.interp(tau, grid, self.log_alpha_bar))

    def alpha_bar_of_index(self, u):
        """:math:`\\bar\\alpha` at a fractional step index ``u`` in [0, T] (log-linear between
        steps, exact at integers): the level a step function's ``score(x, u)`` means."""
        u = np.asarray(u, dtype=np.float64)
        if np.any((u < 0) | (u > self.T)):
            raise ValueError(f"step index must lie in [0, {self.T}]")
        return np.exp(np.interp(u, np.arange(self.T + 1), self.log_alpha_bar))

    def index_of_alpha_bar(self, abar):
        """The fractional step index of noise level ``abar`` in [alpha_bar_T, 1]: the inverse
        of :meth:`alpha_bar_of_index` (log alpha_bar decreases strictly in the index)."""
        la = np.log(np.asarray(abar, dtype=np.float64))
        lab = self.log_alpha_bar
        if np.any((la > 1e-15) | (la < lab[-1] * (1 + 1e-12))):
            raise ValueError(f"noise level outside [alpha_bar_T, 1] = [{np.exp(lab[-1]):.3g}, 1]")
        return np.interp(-la, -lab, np.arange(self.T + 1))

    def describe(self) -> dict:
        return {"name": self.name, "T": self.T, **self.params}


def li_schedule(T: int, c0: float = 2.0, c1: float = 4.0) -> Schedule:
    r"""The schedule of Li, Wei, Chen, Chi (ICLR 2024), THEORY.md section 1 (1-indexed):

    .. math::
        \beta_1 = T^{-c_0}, \qquad
        \beta_{t+1} = \frac{c_1 \log T}{T}\,
            \min\Big\{ \beta_1 \big(1 + \tfrac{c_1 \log T}{T}\big)^t,\; 1 \Big\}.

    The plateau (beta = c1 log T / T) starts near ``t = (c0 / c1) T``; ``c1`` must be well
    above ``c0`` for :math:`\bar\alpha_T` to be small.
    """
    T = _check_T(T)
    # beta_1 = T^-c0 and the plateau c1 log(T)/T must be positive float64 numbers
    c0, c1 = positive("c0", c0), positive("c1", c1)
    if c0 * math.log(T) > LOG_TINY:
        raise ValueError(f"c0 = {c0:g} makes beta_1 = T^-c0 underflow (below 1e-300): c0 "
                         f"must be <= {LOG_TINY / math.log(T):.4g} at T = {T}")
    rate = c1 * math.log(T) / T
    if rate >= 1:
        raise ValueError(f"c1 log(T) / T = {rate:.3g} must be < 1 (lower c1 or raise T)")
    if rate < math.exp(-LOG_TINY):
        raise ValueError(f"c1 log(T) / T = {rate:.3g} underflows: c1 must be >= "
                         f"{math.exp(-LOG_TINY) * T / math.log(T):.3g} at T = {T}")
    beta1 = float(T) ** (-c0)
    t = np.arange(1, T)  # beta_{t+1} for t = 1..T-1
    log_growth = np.log(beta1) + t * math.log1p(rate)
    rest = rate * np.exp(np.minimum(log_growth, 0.0))
    return Schedule(np.concatenate([[beta1], rest]), name="li", params={"c0": c0, "c1": c1})


def linear_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """Ho et al. linear betas from 1e-4 to 0.02 at T = 1000, rescaled to ``T`` steps.

    The rescaling keeps the total noise :math:`\\sum_t \\beta_t` of the 1000-step schedule:
    ``beta_t = (1000 / T) * linspace(beta_start, beta_end, T)[t-1]`` (capped at 0.999).
    """
    T = _check_T(T)
    scale = 1000.0 / T
    b = np.minimum(scale * np.linspace(beta_start, beta_end, T), 0.999)
    return Schedule(b, name="linear", params={"beta_start": beta_start, "beta_end": beta_end})


def cosine_schedule(T: int, s: float = 0.008) -> Schedule:
    r"""Nichol & Dhariwal cosine schedule:
    :math:`\bar\alpha(\tau) = \cos^2\big(\frac{\tau + s}{1 + s}\frac{\pi}{2}\big) / \cos^2(\frac{s}{1+s}\frac{\pi}{2})`,
    ``beta_t = 1 - abar(t/T) / abar((t-1)/T)`` capped at 0.999."""
    T = _check_T(T)
    tau = np.arange(T + 1) / T
    f = np.cos((tau + s) / (1 + s) * np.pi / 2) ** 2
    abar = f / f[0]
    b = np.clip(1 - abar[1:] / abar[:-1], 1e-12, 0.999)
    return Schedule(b, name="cosine", params={"s": s})


SCHEDULES = {"li": li_schedule, "linear": linear_schedule, "cosine": cosine_schedule}


def make_schedule(name: str, T: int, **params) -> Schedule:
    """Build a schedule by name (``li``, ``linear``, ``cosine``)."""
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")
    return SCHEDULES[name](T, **params)


# beta_1 = T^-c0 >= exp(-LOG_TINY) = 1e-300 keeps every beta_t a normal positive float64
LOG_TINY = 300 * math.log(10)


def _check_T(T) -> int:
    """``T`` as an int >= 2 whose arrays fit in memory: a schedule and a rule hold a few
    (T + 1)-vectors of float64 (five at once while the li schedule is built)."""
    T = integer("T", T, lo=2)
    check_memory(40 * (T + 1), f"T = {T} steps")
    return T
