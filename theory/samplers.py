r"""Reverse-time samplers: THEORY.md section 2.

Every sampler here that evaluates the score once per step is the affine rule

.. math::
    Y_{t-1} = a_t Y_t + b_t\, s_t(Y_t) + c_t Z_t, \qquad Z_t \sim N(0, I_d),

run for ``t = T, T-1, ..., 2`` from :math:`Y_T \sim N(0, I_d)`, producing :math:`Y_1`.
An :class:`AffineRule` holds the coefficient arrays; the exact-law engine
(:mod:`theory.laws`) works from them, so a user-defined rule gets exact output laws
wherever the built-in ones do. Coefficients, with :math:`\alpha_t, \bar\alpha_t` from the
schedule:

=========  ==========================  ===================================================  =====================================
name       a_t                         b_t                                                  c_t
=========  ==========================  ===================================================  =====================================
li-ode     1/sqrt(alpha_t)             (1 - alpha_t) / (2 sqrt(alpha_t))                    0
li-sde     1/sqrt(alpha_t)             (1 - alpha_t) / sqrt(alpha_t)                        sqrt((1 - alpha_t)/alpha_t)
li-yan     1/sqrt(alpha_t)             (1 - alpha_t) / sqrt(alpha_t)                        sigma_t/sqrt(alpha_t), sigma_t^2 = (1-alpha_t)(alpha_t-abar_t)/(1-abar_t)
ddpm       1/sqrt(alpha_t)             (1 - alpha_t) / sqrt(alpha_t)                        sqrt((1-abar_{t-1})(1-alpha_t)/(1-abar_t))
ddim       sqrt(abar_{t-1}/abar_t)     sqrt(abar_{t-1})(1-abar_t)/sqrt(abar_t) - sqrt((1-abar_{t-1})(1-abar_t))   0
=========  ==========================  ===================================================  =====================================

Two further rules of Li, Huang, Efimov, Wei, Chi, Chen (ICML 2024, arXiv:2403.03852):

* ``accel-sde`` (THEORY.md section 2): noise *before* the score,
  :math:`Y^+ = Y_t + \sqrt{(1-\alpha_t)/2}\,Z`,
  :math:`Y_{t-1} = (Y^+ + (1-\alpha_t)s_t(Y^+))/\sqrt{\alpha_t} + \sqrt{(1-\alpha_t)/2}\,Z'`
  (``pre_c``);
* ``accel-ode``: the accelerated deterministic sampler as stated in the authors' code
  repository (README of the official implementation; not yet in THEORY.md), with
  :math:`\epsilon_t = -\sqrt{1-\bar\alpha_t}\,s_t`: the DDIM step plus a correction by the
  previous step's noise prediction,

  .. math::
      Y_{t-1} = \frac{Y_t}{\sqrt{\alpha_t}} + \Big(\sqrt{1-\bar\alpha_{t-1}}
      - \frac{\sqrt{1-\bar\alpha_t}}{\sqrt{\alpha_t}}\Big)\epsilon_t(Y_t)
      + \frac{\sqrt{\bar\alpha_{t-1}}}{\bar\alpha_t - \bar\alpha_{t+1}}
        \big(F_t(\bar\alpha_{t-1}) - F_t(\bar\alpha_t)\big)
        \big(\epsilon_{t+1}(Y_{t+1}) - \epsilon_t(Y_t)\big),

  :math:`F_t(a) = \bar\alpha_t\sqrt{1-a}/\sqrt a + \arcsin\sqrt a`. [derived] This is the
  two-step Adams method for the probability-flow ODE in DDIM's variables: with
  :math:`\bar y = y/\sqrt{\bar\alpha}` and :math:`\bar\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}`
  the ODE is :math:`d\bar y/d\bar\sigma = \epsilon`; interpolating :math:`\epsilon` linearly in
  :math:`\bar\alpha` through the values at steps t and t+1 and integrating over
  :math:`[\bar\sigma_t, \bar\sigma_{t-1}]` gives the correction, because
  :math:`\int (a - \bar\alpha_t)\,d\bar\sigma = -F_t(a)`. One score call per step (the
  previous one is reused); the first step (t = T) is the plain DDIM step. As an affine rule it
  has a fourth coefficient ``b_prev`` on the previous step's score,
  :math:`Y_{t-1} = a_t Y_t + b_t s_t(Y_t) + b^{prev}_t s_{t+1}(Y_{t+1})`.

``li-yan`` and ``ddpm`` (Ho's posterior variance) have the same coefficients: written out,
:math:`(1-\alpha_t)(\alpha_t-\bar\alpha_t)/((1-\bar\alpha_t)\alpha_t) = (1-\alpha_t)(1-\bar\alpha_{t-1})/(1-\bar\alpha_t)`.
Both names are kept, each after the rule of its paper.

References:
    Li, Wei, Chen, Chi, ICLR 2024, arXiv:2306.09251 (li-ode, li-sde).
    Li & Yan, arXiv:2405.14861 and 2409.18959 (li-yan).
    Ho, Jain, Abbeel, NeurIPS 2020 (ddpm). Song, Meng, Ermon, ICLR 2021 (ddim, eta = 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from .priors import Prior
from .schedules import Schedule

__all__ = ["AffineRule", "StepSampler", "sampler_rule", "SAMPLERS", "AnalyticScore",
           "run_sampler"]

ScoreFn = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class AffineRule:
    """Coefficients of ``Y_{t-1} = a[t] Y_t + b[t] s_t(Y_t) + c[t] Z_t``.

    Arrays are indexed by the step ``t = 0..T`` (length ``T + 1``); only ``t = 2..T`` are used.
    Optional ``pre_c``: noise added *before* the score is evaluated,
    ``Y+ = Y_t + pre_c[t] Z'``, then ``Y_{t-1} = a[t] Y+ + b[t] s_t(Y+) + c[t] Z`` (the
    accelerated stochastic sampler); zero by default.
    Optional ``b_prev``: a term ``b_prev[t] s_{t+1}(Y_{t+1})`` with the score of the previous
    step (two-step rules such as the accelerated ODE; ``b_prev[T]`` must be 0); zero by
    default. A rule cannot have both.
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    schedule: Schedule = field(repr=False)
    pre_c: Optional[np.ndarray] = None
    b_prev: Optional[np.ndarray] = None

    def __post_init__(self):
        T = self.schedule.T
        for key in ("pre_c", "b_prev"):
            if getattr(self, key) is None:
                object.__setattr__(self, key, np.zeros(T + 1))
        for key in ("a", "b", "c", "pre_c", "b_prev"):
            arr = np.asarray(getattr(self, key), dtype=np.float64)
            if arr.shape != (T + 1,):
                raise ValueError(f"coefficient {key} must have length T + 1 = {T + 1} "
                                 f"(indexed by t = 0..T), got shape {arr.shape}")
            if not np.all(np.isfinite(arr[2:])):
                raise ValueError(f"coefficient {key} is not finite for some t in 2..T")
            object.__setattr__(self, key, arr)
        if np.any(self.c[2:] < 0) or np.any(self.pre_c[2:] < 0):
            raise ValueError("noise coefficients c_t must be non-negative")
        if self.b_prev[T] != 0:
            raise ValueError("b_prev[T] must be 0: the first step has no previous score")
        if self.multistep and np.any(self.pre_c[2:] != 0):
            raise ValueError("a rule cannot have both b_prev and pre_c")

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def deterministic(self) -> bool:
        return bool(np.all(self.c[2:] == 0) and np.all(self.pre_c[2:] == 0))

    @property
    def multistep(self) -> bool:
        """True if the rule uses the previous step's score (``b_prev`` not all zero)."""
        return bool(np.any(self.b_prev[2:] != 0))

    def describe(self) -> dict:
        return {"sampler": self.name, "deterministic": self.deterministic,
                **({"multistep": True} if self.multistep else {})}


# ``1 - alpha_t`` is taken as ``beta_t`` itself: recomputing it as ``1 - (1 - beta_t)`` loses
# digits when beta_t is tiny (beta_2 ~ 3e-8 for the li schedule at T = 1000).

def _rule_li_ode(s: Schedule):
    al, be = s.alpha, s.beta
    return 1 / np.sqrt(al), be / (2 * np.sqrt(al)), np.zeros_like(al)


def _rule_li_sde(s: Schedule):
    al, be = s.alpha, s.beta
    return 1 / np.sqrt(al), be / np.sqrt(al), np.sqrt(be / al)


def _rule_li_yan(s: Schedule):
    al, be, omab = s.alpha, s.beta, s.one_minus_alpha_bar
    gap = np.zeros_like(al)             # alpha_t - abar_t = alpha_t (1 - abar_{t-1}), no cancellation
    gap[1:] = al[1:] * omab[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = be * gap / omab
    sigma2[0] = 0.0
    return 1 / np.sqrt(al), be / np.sqrt(al), np.sqrt(np.maximum(sigma2, 0) / al)


def _rule_ddpm(s: Schedule):
    al, be, omab = s.alpha, s.beta, s.one_minus_alpha_bar
    var = np.zeros_like(al)
    var[1:] = omab[:-1] * be[1:] / omab[1:]
    return 1 / np.sqrt(al), be / np.sqrt(al), np.sqrt(var)


def _rule_ddim(s: Schedule):
    ab, omab = s.alpha_bar, s.one_minus_alpha_bar
    a = np.ones_like(ab)
    b = np.zeros_like(ab)
    a[1:] = np.sqrt(ab[:-1] / ab[1:])
    b[1:] = (np.sqrt(ab[:-1]) * omab[1:] / np.sqrt(ab[1:])
             - np.sqrt(omab[:-1] * omab[1:]))
    return a, b, np.zeros_like(ab)


def _rule_accel_sde(s: Schedule):
    """Accelerated stochastic sampler (Li et al., ICML 2024, arXiv:2403.03852, THEORY.md §2):
    Y+ = Y_t + sqrt((1 - alpha_t)/2) Z, Y_{t-1} = (Y+ + (1 - alpha_t) s_t(Y+))/sqrt(alpha_t)
    + sqrt((1 - alpha_t)/2) Z'."""
    al, be = s.alpha, s.beta
    half = np.sqrt(be / 2)
    return 1 / np.sqrt(al), be / np.sqrt(al), half, half


def _rule_accel_ode(s: Schedule):
    """Accelerated deterministic sampler (module docstring) as ``(a, b, c, pre_c, b_prev)``.

    With eps = -sqrt(1 - abar) s: ``Y_{t-1} = Y_t/sqrt(alpha_t) + k1_t eps_t + k2_t (eps_{t+1}
    - eps_t)``, so ``b_t = -sqrt(1 - abar_t)(k1_t - k2_t)`` and ``b_prev_t = -sqrt(1 -
    abar_{t+1}) k2_t``. Every difference of neighbouring quantities is formed without
    cancellation (beta_t is tiny near t = 1).
    """
    T = s.T
    al, be, ab, om = s.alpha, s.beta, s.alpha_bar, s.one_minus_alpha_bar
    a = 1 / np.sqrt(al)
    b, b_prev = np.zeros(T + 1), np.zeros(T + 1)
    t = np.arange(2, T + 1)
    # k1 = sqrt(1 - abar_{t-1}) - sqrt(1 - abar_t)/sqrt(alpha_t)
    #    = (alpha_t (1 - abar_{t-1}) - (1 - abar_t)) / (sqrt(alpha_t)(...)) = -beta_t / (...)
    k1 = -be[t] / (np.sqrt(al[t]) * (np.sqrt(al[t] * om[t - 1]) + np.sqrt(om[t])))
    k2 = np.zeros(t.size)
    inner = t < T
    ti = t[inner]
    sig_prev, sig = np.sqrt(om[ti - 1] / ab[ti - 1]), np.sqrt(om[ti] / ab[ti])
    dsig = -(be[ti] / ab[ti]) / (sig_prev + sig)                     # sigma_{t-1} - sigma_t
    den = np.sqrt(ab[ti - 1] * om[ti]) + np.sqrt(om[ti - 1] * ab[ti])
    dasin = np.arcsin(ab[ti - 1] * be[ti] / den)     # arcsin sqrt(abar_{t-1}) - arcsin sqrt(abar_t)
    dF = ab[ti] * dsig + dasin                                       # F_t(abar_{t-1}) - F_t(abar_t)
    k2[inner] = np.sqrt(ab[ti - 1]) / (ab[ti] * be[ti + 1]) * dF   # abar_t - abar_{t+1} = abar_t beta_{t+1}
    b[t] = -np.sqrt(om[t]) * (k1 - k2)
    b_prev[ti] = -np.sqrt(om[ti + 1]) * k2[inner]
    return a, b, np.zeros(T + 1), None, b_prev


_RULES = {"li-ode": _rule_li_ode, "li-sde": _rule_li_sde, "li-yan": _rule_li_yan,
          "ddpm": _rule_ddpm, "ddim": _rule_ddim, "accel-sde": _rule_accel_sde,
          "accel-ode": _rule_accel_ode}
SAMPLERS = tuple(_RULES)


def sampler_rule(name: str, schedule: Schedule) -> AffineRule:
    """The affine rule of a built-in sampler (see the module table)."""
    if not isinstance(name, str) or name not in _RULES:
        raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    if not isinstance(schedule, Schedule):
        raise ValueError(f"sampler_rule needs a Schedule (e.g. li_schedule(T)), got "
                         f"{type(schedule).__name__}")
    coeffs = _RULES[name](schedule)
    return AffineRule(name, *coeffs[:3], schedule, *coeffs[3:])


class AnalyticScore:
    r"""The exact score :math:`s^\star_t = \nabla \log q_t` of a prior under a schedule.

    Callable as ``score(x, t)`` with ``t`` the step index; marginals are built once per ``t``.
    """

    def __init__(self, prior: Prior, schedule: Schedule):
        self.prior, self.schedule = prior, schedule
        self._abar = schedule.alpha_bar
        self._cache: dict[int, Prior] = {}

    def marginal(self, t: int) -> Prior:
        t = int(t)
        if t not in self._cache:
            if not 0 <= t <= self.schedule.T:
                raise ValueError(f"step index {t} outside 0..{self.schedule.T}")
            self._cache[t] = self.prior.marginal(float(self._abar[t]))
        return self._cache[t]

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        return self.marginal(t).score(x)

    def jacobian(self, x: torch.Tensor, t: int) -> torch.Tensor:
        return self.marginal(t).score_jacobian(x)


StepFn = Callable[[torch.Tensor, int, ScoreFn, Optional[torch.Generator]], torch.Tensor]


@dataclass(frozen=True)
class StepSampler:
    r"""A sampler given by its step function (any update, any number of score calls):
    ``step(y_t, t, score, generator) -> y_{t-1}``, run for ``t = T, ..., 2`` from
    :math:`Y_T \sim N(0, I)` by :func:`run_sampler`.

    ``score(x, u)`` can be called at any step index ``u = 0..T`` (analytic scores exist at
    every noise level), so multistep and predictor-corrector rules fit. The step must draw
    all its noise from ``generator`` (same seed, same numbers), on ``y_t``'s device and dtype.
    A :class:`StepSampler` gets the sample-based distances (:mod:`theory.distances.samples`);
    a sampler that is affine in the score should be written as an :class:`AffineRule`, which
    also gets exact output laws.

    Parameters
    ----------
    name : str
    step : callable ``(y, t, score, generator) -> tensor``
    schedule : Schedule
        The noise levels the score is evaluated at (and the target ``q_1``).
    deterministic : bool
        True if ``step`` uses no randomness.
    score_calls_per_step : int
        Recorded with results (cost comparisons).
    """

    name: str
    step: StepFn
    schedule: Schedule = field(repr=False)
    deterministic: bool = False
    score_calls_per_step: int = 1

    def __post_init__(self):
        if not callable(self.step):
            raise ValueError("step must be a callable (y, t, score, generator) -> y_prev")
        if not isinstance(self.schedule, Schedule):
            raise ValueError("schedule must be a theory.schedules.Schedule")
        k = self.score_calls_per_step
        if isinstance(k, bool) or not float(k).is_integer() or int(k) < 0:
            raise ValueError(f"score_calls_per_step must be a non-negative integer, got {k}")

    @property
    def T(self) -> int:
        return self.schedule.T

    def describe(self) -> dict:
        return {"sampler": self.name, "deterministic": self.deterministic,
                "kind": "step function", "score_calls_per_step": int(self.score_calls_per_step)}


def run_sampler(rule, score: ScoreFn, n: int, dim: int, *,
                generator: Optional[torch.Generator] = None, device=None,
                dtype: torch.dtype = torch.float64, y_T: Optional[torch.Tensor] = None,
                callback: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
    """Run a sampler from ``Y_T ~ N(0, I)`` (or the given ``y_T``) down to ``Y_1``.

    Parameters
    ----------
    rule : AffineRule or StepSampler
    score : callable ``(x, t) -> tensor``
        Any score, exact (:class:`AnalyticScore`) or perturbed.
    n, dim : int
        Number of samples and dimension.
    generator : torch.Generator, optional
        Source of all randomness (the start and the per-step noise).
    callback : callable ``(t, y_t)``, optional
        Sees the state at every step index ``t = T, ..., 1``.

    Returns
    -------
    Y_1 : tensor, shape (n, dim)
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if y_T is None:
        y = torch.randn(int(n), int(dim), generator=generator, dtype=dtype, device=device)
    else:
        y = torch.as_tensor(y_T, dtype=dtype, device=device).clone()
    if not isinstance(rule, (AffineRule, StepSampler)):
        raise ValueError(f"rule must be an AffineRule or a StepSampler, got {type(rule).__name__}")
    T = rule.T
    if callback is not None:
        callback(T, y)
    if isinstance(rule, StepSampler):
        for t in range(T, 1, -1):
            y_next = rule.step(y, t, score, generator)
            if not (isinstance(y_next, torch.Tensor) and y_next.shape == y.shape):
                raise ValueError(f"step of {rule.name!r} must return a tensor of shape "
                                 f"{tuple(y.shape)} at t = {t}")
            y = y_next
            if callback is not None:
                callback(t - 1, y)
        return y
    det = rule.deterministic
    s_prev = None
    z = None if det else torch.empty_like(y)        # noise buffer, refilled in place
    for t in range(T, 1, -1):
        if rule.pre_c[t] > 0:
            torch.randn(y.shape, generator=generator, dtype=dtype, device=device, out=z)
            y = y + rule.pre_c[t] * z
        s = score(y, t)
        y_next = torch.add(rule.b[t] * s, y, alpha=float(rule.a[t]))   # a y + b s, one pass
        if rule.b_prev[t] != 0:
            y_next.add_(s_prev, alpha=float(rule.b_prev[t]))
        s_prev = s
        if not det and rule.c[t] > 0:
            torch.randn(y.shape, generator=generator, dtype=dtype, device=device, out=z)
            y_next.add_(z, alpha=float(rule.c[t]))
        y = y_next
        if callback is not None:
            callback(t - 1, y)
    return y
