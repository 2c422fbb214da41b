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

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from ._lazy import torch

from .priors import Prior
from .schedules import Schedule
from .stages import STAGE_SAMPLERS, RunSpan, StageRule, check_run, stage_rule

__all__ = ["AffineRule", "StepSampler", "sampler_rule", "SAMPLERS", "AFFINE_SAMPLERS",
           "AnalyticScore", "run_sampler"]

ScoreFn = Callable[["torch.Tensor", int], "torch.Tensor"]


@dataclass(frozen=True)
class AffineRule(RunSpan):
    r"""Coefficients of ``Y_{t-1} = a[t] Y_t + b[t] s_t(Y_t) + c[t] Z_t``.

    Arrays are indexed by the step ``t = 0..T`` (length ``T + 1``); only ``t = 2..T`` are used.
    Optional ``pre_c``: noise added *before* the score is evaluated,
    ``Y+ = Y_t + pre_c[t] Z'``, then ``Y_{t-1} = a[t] Y+ + b[t] s_t(Y+) + c[t] Z`` (the
    accelerated stochastic sampler); zero by default.
    Optional ``b_prev``: a term ``b_prev[t] s_{t+1}(Y_{t+1})`` with the score of the previous
    step (two-step rules such as the accelerated ODE; ``b_prev[T]`` must be 0); zero by
    default. A rule cannot have both.

    ``target``: ``"q1"`` (default) runs ``t = T..2`` and compares :math:`Y_1` with
    :math:`q_1`; ``"data"`` also runs the step ``t = 1`` (into ``alpha_bar_0 = 1``) and
    compares :math:`Y_0` with the data law (the prior itself), as a diffusers loop does and as
    Pierret & Galerne (arXiv:2405.14250) measure. ``init``: ``"standard-normal"`` (default)
    starts from :math:`Y_T \sim N(0, I)`, ``"qT"`` from the exact forward marginal
    :math:`q_T` (no initialisation error). Coefficients must be finite on the steps run.
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    schedule: Schedule = field(repr=False)
    pre_c: Optional[np.ndarray] = None
    b_prev: Optional[np.ndarray] = None
    target: str = "q1"
    init: str = "standard-normal"

    def __post_init__(self):
        check_run(self.target, self.init)
        T = self.schedule.T
        lo = self.stop + 1
        for key in ("pre_c", "b_prev"):
            if getattr(self, key) is None:
                object.__setattr__(self, key, np.zeros(T + 1))
        for key in ("a", "b", "c", "pre_c", "b_prev"):
            arr = np.asarray(getattr(self, key), dtype=np.float64)
            if arr.shape != (T + 1,):
                raise ValueError(f"coefficient {key} must have length T + 1 = {T + 1} "
                                 f"(indexed by t = 0..T), got shape {arr.shape}")
            if not np.all(np.isfinite(arr[lo:])):
                raise ValueError(f"coefficient {key} is not finite for some t in {lo}..T")
            object.__setattr__(self, key, arr)
        if np.any(self.c[lo:] < 0) or np.any(self.pre_c[lo:] < 0):
            raise ValueError("noise coefficients c_t must be non-negative")
        if self.b_prev[T] != 0:
            raise ValueError("b_prev[T] must be 0: the first step has no previous score")
        if self.multistep and np.any(self.pre_c[lo:] != 0):
            raise ValueError("a rule cannot have both b_prev and pre_c")

    @property
    def deterministic(self) -> bool:
        lo = self.stop + 1
        return bool(np.all(self.c[lo:] == 0) and np.all(self.pre_c[lo:] == 0))

    @property
    def multistep(self) -> bool:
        """True if the rule uses the previous step's score (``b_prev`` not all zero)."""
        return bool(np.any(self.b_prev[self.stop + 1:] != 0))

    def describe(self) -> dict:
        return {"sampler": self.name, "deterministic": self.deterministic,
                **({"multistep": True} if self.multistep else {}),
                **({"target": self.target} if self.target != "q1" else {}),
                **({"init": self.init} if self.init != "standard-normal" else {})}


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


def _rule_ddim(s: Schedule, eta: float = 0.0):
    """DDIM with its eta knob (Song, Meng, Ermon, ICLR 2021, eq. 16):
    ``sigma_t^2 = eta^2 (1 - abar_{t-1})/(1 - abar_t) (1 - abar_t/abar_{t-1})``,
    ``x_{t-1} = sqrt(abar_{t-1}) x0_hat + sqrt(1 - abar_{t-1} - sigma_t^2) eps_hat + sigma_t z``.
    eta = 1 is Ho's ancestral step (the ``ddpm`` rule); eta = 0 the deterministic DDIM."""
    ab, omab, be = s.alpha_bar, s.one_minus_alpha_bar, s.beta
    a = np.ones_like(ab)
    b = np.zeros_like(ab)
    c = np.zeros_like(ab)
    a[1:] = np.sqrt(ab[:-1] / ab[1:])
    # 1 - abar_t / abar_{t-1} = beta_t: no cancellation
    var = np.zeros_like(ab)
    var[1:] = eta * eta * omab[:-1] / omab[1:] * be[1:]
    b[1:] = (np.sqrt(ab[:-1]) * omab[1:] / np.sqrt(ab[1:])
             - np.sqrt(np.maximum(omab[:-1] - var[1:], 0.0) * omab[1:]))
    c[1:] = np.sqrt(var[1:])
    return a, b, c


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
    t = np.arange(1, T + 1)              # t = 1 too: the step into the data (target "data")
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
AFFINE_SAMPLERS = tuple(_RULES)
SAMPLERS = AFFINE_SAMPLERS + STAGE_SAMPLERS


def sampler_rule(name: str, schedule: Schedule, *, target: str = "q1",
                 init: str = "standard-normal", eta: Optional[float] = None):
    """The rule of a built-in sampler: an :class:`AffineRule` (the module table) or, for the
    multi-stage and multistep samplers (``heun``, ``rk4``, ``dpm++2m``, ``dpm++3m``), a
    :class:`~theory.stages.StageRule`. ``eta``: the DDIM noise knob (``ddim`` only).
    ``target``/``init``: see :class:`AffineRule`."""
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    if not isinstance(schedule, Schedule):
        raise ValueError(f"sampler_rule needs a Schedule (e.g. li_schedule(T)), got "
                         f"{type(schedule).__name__}")
    if eta is not None and name != "ddim":
        raise ValueError(f"eta applies to the ddim sampler only, not {name}")
    if name in STAGE_SAMPLERS:
        return stage_rule(name, schedule, target=target, init=init)
    if name == "ddim" and eta is not None:
        eta = float(eta)
        if not (math.isfinite(eta) and eta >= 0):
            raise ValueError(f"eta must be a non-negative number, got {eta}")
        coeffs = _rule_ddim(schedule, eta)
        name = f"ddim(eta={eta:g})" if eta != 0 else name
    else:
        coeffs = _RULES[name](schedule)
    coeffs = tuple(coeffs) + (None,) * (5 - len(coeffs))
    return AffineRule(name, *coeffs[:3], schedule, *coeffs[3:], target=target, init=init)


class AnalyticScore:
    r"""The exact score :math:`s^\star_t = \nabla \log q_t` of a prior under a schedule.

    Callable as ``score(x, t)`` with ``t`` the step index (an integer, or a fractional index
    between steps: the level is then :meth:`Schedule.alpha_bar_of_index`); marginals are
    built once per level. :meth:`at_alpha_bar` takes the noise level itself (multi-stage
    rules evaluate between steps).
    """

    def __init__(self, prior: Prior, schedule: Schedule):
        self.prior, self.schedule = prior, schedule
        self._abar = schedule.alpha_bar
        self._cache: dict = {}

    def marginal(self, t) -> Prior:
        """The forward marginal at step index ``t`` (integer or fractional)."""
        t = float(t)
        if not 0 <= t <= self.schedule.T:
            raise ValueError(f"step index {t:g} outside 0..{self.schedule.T}")
        abar = float(self._abar[int(t)]) if t.is_integer() else \
            float(self.schedule.alpha_bar_of_index(t))
        return self.marginal_at(abar)

    def marginal_at(self, abar: float) -> Prior:
        """The forward marginal at noise level ``abar`` in (0, 1]."""
        abar = float(abar)
        if abar not in self._cache:
            self._cache[abar] = self.prior.marginal(abar)
        return self._cache[abar]

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.marginal(t).score(x)

    def at_alpha_bar(self, x: torch.Tensor, abar: float) -> torch.Tensor:
        return self.marginal_at(abar).score(x)

    def jacobian(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.marginal(t).score_jacobian(x)


StepFn = Callable[["torch.Tensor", int, ScoreFn, Optional["torch.Generator"]], "torch.Tensor"]


@dataclass(frozen=True)
class StepSampler(RunSpan):
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
    target, init : str
        As for :class:`AffineRule` (``target="data"`` also runs ``t = 1``).

    :func:`theory.probe.read_step_sampler` reads the coefficients of an affine step function
    (verified on random inputs) and returns the exact rule.
    """

    name: str
    step: StepFn
    schedule: Schedule = field(repr=False)
    deterministic: bool = False
    score_calls_per_step: int = 1
    target: str = "q1"
    init: str = "standard-normal"

    def __post_init__(self):
        check_run(self.target, self.init)
        if not callable(self.step):
            raise ValueError("step must be a callable (y, t, score, generator) -> y_prev")
        if not isinstance(self.schedule, Schedule):
            raise ValueError("schedule must be a theory.schedules.Schedule")
        k = self.score_calls_per_step
        if isinstance(k, bool) or not float(k).is_integer() or int(k) < 0:
            raise ValueError(f"score_calls_per_step must be a non-negative integer, got {k}")

    def describe(self) -> dict:
        return {"sampler": self.name, "deterministic": self.deterministic,
                "kind": "step function", "score_calls_per_step": int(self.score_calls_per_step),
                **({"target": self.target} if self.target != "q1" else {}),
                **({"init": self.init} if self.init != "standard-normal" else {})}


def run_sampler(rule, score: ScoreFn, n: int, dim: int, *,
                generator: Optional[torch.Generator] = None, device=None,
                dtype: Optional[torch.dtype] = None, y_T: Optional[torch.Tensor] = None,
                callback: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
    """Run a sampler from ``Y_T`` down to ``Y_1`` (target ``q1``) or ``Y_0`` (target ``data``).

    ``Y_T ~ N(0, I)``, or the exact forward marginal ``q_T`` for ``rule.init == "qT"``
    (drawn from ``score.marginal(T)``, so ``score`` must be an :class:`AnalyticScore`), or the
    given ``y_T``.

    Parameters
    ----------
    rule : AffineRule, StageRule or StepSampler
    score : callable ``(x, t) -> tensor``
        Any score, exact (:class:`AnalyticScore`) or perturbed. A :class:`StageRule` evaluates
        it at the noise levels of its stages: through ``score.at_alpha_bar(x, abar)`` where the
        score has that method, else at the fractional step index of the level.
    n, dim : int
        Number of samples and dimension.
    generator : torch.Generator, optional
        Source of all randomness (the start and the per-step noise, in order of use: the
        noise before a step's score, then the noise after it).
    callback : callable ``(t, y_t)``, optional
        Sees the state at every step index ``t = T, ..., stop``.

    Returns
    -------
    Y_stop : tensor, shape (n, dim)
    """
    if not isinstance(rule, (AffineRule, StepSampler, StageRule)):
        raise ValueError(f"rule must be an AffineRule, a StageRule or a StepSampler, got "
                         f"{type(rule).__name__}")
    dtype = torch.float64 if dtype is None else dtype
    device = torch.device(device) if device is not None else torch.device("cpu")
    T = rule.T
    if y_T is not None:
        y = torch.as_tensor(y_T, dtype=dtype, device=device).clone()
    elif rule.init == "qT":
        if not callable(getattr(score, "marginal", None)):
            raise ValueError("init 'qT' draws Y_T from the exact forward marginal: pass an "
                             "AnalyticScore (or y_T)")
        y = score.marginal(T).sample(int(n), generator=generator).to(dtype=dtype, device=device)
    else:
        y = torch.randn(int(n), int(dim), generator=generator, dtype=dtype, device=device)
    if callback is not None:
        callback(T, y)

    def noise():
        return torch.randn(y.shape, generator=generator, dtype=dtype, device=device)

    if isinstance(rule, StepSampler):
        for t in rule.steps:
            y_next = rule.step(y, t, score, generator)
            if not (isinstance(y_next, torch.Tensor) and y_next.shape == y.shape):
                raise ValueError(f"step of {rule.name!r} must return a tensor of shape "
                                 f"{tuple(y.shape)} at t = {t}")
            y = y_next
            if callback is not None:
                callback(t - 1, y)
        return y
    if isinstance(rule, StageRule):
        return _run_stages(rule, score, y, noise, callback)
    det = rule.deterministic
    s_prev = None
    z = None if det else torch.empty_like(y)        # noise buffer, refilled in place
    for t in rule.steps:
        if rule.pre_c[t] > 0:
            torch.randn(y.shape, generator=generator, dtype=dtype, device=device, out=z)
            y = y + rule.pre_c[t] * z
        s = score(y, t)
        # a y + b s (+ b' s_prev) + c z, rounded term by term as that expression is: a step
        # function written the obvious way gives the same numbers bit for bit
        y_next = torch.mul(y, float(rule.a[t]))
        y_next += rule.b[t] * s
        if rule.b_prev[t] != 0:
            y_next += rule.b_prev[t] * s_prev
        s_prev = s
        if not det and rule.c[t] > 0:
            torch.randn(y.shape, generator=generator, dtype=dtype, device=device, out=z)
            y_next += z.mul_(float(rule.c[t]))
        y = y_next
        if callback is not None:
            callback(t - 1, y)
    return y


def _run_stages(rule: StageRule, score, y, noise, callback):
    """:func:`run_sampler` for a :class:`StageRule`: the state (sample and history), each
    step's stages at their noise levels, the new state, then the noise."""
    sched = rule.schedule
    at_level = getattr(score, "at_alpha_bar", None)

    def evaluate(x, abar):
        if at_level is not None:
            return at_level(x, abar)
        return score(x, float(sched.index_of_alpha_bar(abar)))

    state = [y] + [torch.zeros_like(y) for _ in range(rule.m - 1)]
    for t in rule.steps:
        tab = rule.tableaux[t]
        if tab.pre_c > 0:
            state[0] = state[0] + tab.pre_c * noise()
        need = tab.needed
        S = []
        for i in range(tab.s):
            if not need[i]:
                S.append(None)
                continue
            x = sum(tab.P[i, k] * state[k] for k in range(tab.m) if tab.P[i, k] != 0)
            for j in range(i):
                if tab.Q[i, j] != 0:
                    x = x + tab.Q[i, j] * S[j]
            S.append(evaluate(x if torch.is_tensor(x) else torch.zeros_like(y), tab.abar[i]))
        new = []
        for k in range(tab.m):
            v = torch.zeros_like(y)
            for k2 in range(tab.m):
                if tab.A[k, k2] != 0:
                    v = v + tab.A[k, k2] * state[k2]
            for i in range(tab.s):
                if tab.B[k, i] != 0:
                    v = v + tab.B[k, i] * S[i]
            new.append(v)
        if tab.c > 0:
            new[0] = new[0] + tab.c * noise()
        state = new
        if callback is not None:
            callback(t - 1, state[0])
    return state[0]
