r"""Multi-stage and multistep samplers as exact rules: general linear methods.

A step ``t -> t-1`` of a sampler that evaluates the score several times (Heun, RK4) or reuses
earlier evaluations (DPM-Solver++(2M)/(3M), the accelerated ODE) is, with scalar coefficients
acting on every coordinate alike, a *general linear method* (Butcher 1966): a state vector
:math:`U_t = (Y_t, H^1_t, \dots, H^{m-1}_t)` (the sample and ``m - 1`` remembered quantities,
e.g. past data predictions) and ``s`` stages

.. math::
    Y_t \leftarrow Y_t + \mathrm{pre\_c}_t Z', \qquad
    X_i = \sum_k P_{ik} U_{t,k} + \sum_{j<i} Q_{ij} S_j, \qquad
    S_i = s(X_i;\, \bar\alpha^{(i)}),

    U_{t-1} = A U_t + B S, \qquad Y_{t-1} \leftarrow Y_{t-1} + c_t Z,

where :math:`s(\cdot;\bar\alpha)` is the exact score of the forward marginal at noise level
:math:`\bar\alpha` (any level, not only the schedule's steps: RK4 evaluates at midpoints).
A :class:`Tableau` holds ``(abar, P, Q, A, B, c, pre_c)`` of one step; a :class:`StageRule`
one tableau per step. Every one-score affine rule is the case ``m = 1, s = 1`` (``as_stage_rule``
converts an :class:`~theory.samplers.AffineRule`). Exact laws (:mod:`theory.laws.stages`):
on a Gaussian prior every score is affine, so the state stays jointly Gaussian (a recursion
for its mean and covariance); on a product prior each step is a 1-D map (``m = 1``) or, for a
deterministic multistep rule, a 1-D map carrying its history as functions of the current
sample.

Built-in rules (all on the probability-flow ODE written in DDIM's variables
:math:`\bar y = y/\sqrt{\bar\alpha}`, :math:`\bar\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}`,
:math:`d\bar y/d\bar\sigma = \varepsilon(y;\bar\alpha) = -\sqrt{1-\bar\alpha}\,s(y;\bar\alpha)`,
the variables in which DDIM is Euler's method (Karras et al. 2022, section 3)):

* ``heun``: Heun's second-order method from :math:`\bar\sigma_t` to :math:`\bar\sigma_{t-1}`
  (two evaluations; the step into :math:`\bar\sigma = 0` is Euler's), Algorithm 1 of Karras,
  Aittala, Aila, Laine (EDM), NeurIPS 2022, arXiv:2206.00364. Order 2.
* ``rk4``: the classical fourth-order Runge-Kutta method on the same ODE (four evaluations, two
  at the midpoint level :math:`\bar\alpha = 1/(1 + \bar\sigma_m^2)`), as used for diffusion by
  PNDM (Liu et al., ICLR 2022). Order 4.
* ``dpm++2m`` and ``dpm++3m``: the multistep DPM-Solver++ of Lu, Zhou, Bao, Chen, Li, Zhu
  (arXiv:2211.01095, Algorithm 2 for 2M; 3M the third-order multistep update), on the data
  prediction :math:`D = (y + (1-\bar\alpha)s)/\sqrt{\bar\alpha}` and
  :math:`\lambda = \log(\sqrt{\bar\alpha}/\sqrt{1-\bar\alpha})`; the first steps use lower
  orders (the history is not there yet) and the step into the data (:math:`\lambda = \infty`)
  is first order (it returns D). Orders 2 and 3.
* ``dpm++3m-ref``: the third-order multistep update exactly as the authors' code and
  ``diffusers``' DPMSolverMultistepScheduler write it. [derived, and measured] It is only
  second order: its curvature estimate ``D2 = (D1_0 - D1_1)/(r0 + r1)`` approximates
  :math:`h^2 \hat x''/2`, while the exact exponential integral
  :math:`\int_0^h e^{u-h}\hat x(\lambda_s + u)\,du = -\varphi_1\hat x + h\varphi_2\hat x'
  - h^2\varphi_3\hat x''` needs :math:`-\varphi_3 h^2\hat x'' = -2\varphi_3 D_2`; the update's
  :math:`-\varphi_3 D_2` is not exact for a quadratic :math:`\hat x(\lambda)`. ``dpm++3m``
  uses :math:`-2\varphi_3 D_2` (exact for quadratics). On a Gaussian prior with uniform steps
  in lambda, T = 100..800 from q_T, the TV of ``dpm++3m-ref`` falls like T^-2.0 and that of
  ``dpm++3m`` like T^-4 or faster (``tests/test_stages.py``).

Every built-in rule has a tableau for each ``t = 1..T`` (step 1 goes to the data), so the
same rule serves both targets (``target="q1"``: steps ``T..2``, compared with :math:`q_1`;
``target="data"``: steps ``T..1``, compared with the prior itself).

References:
    Butcher, "On the convergence of numerical solutions to ordinary differential equations",
    Math. Comp. 1966 (general linear methods).
    Karras, Aittala, Aila, Laine, NeurIPS 2022, arXiv:2206.00364 (Heun, the ODE variables).
    Lu, Zhou, Bao, Chen, Li, Zhu, arXiv:2211.01095 (DPM-Solver++).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .checks import choice
from .schedules import Schedule

__all__ = ["Tableau", "StageRule", "stage_rule", "as_stage_rule", "STAGE_SAMPLERS",
           "STAGE_ORDERS", "TARGETS", "INITS", "check_run", "RunSpan"]

TARGETS = ("q1", "data")
INITS = ("standard-normal", "qT")


def check_run(target, init):
    """Validate the target (``q1``: compare Y_1 with q_1; ``data``: run the step t = 1 too
    and compare Y_0 with the prior) and the start (``standard-normal`` or ``qT``, the exact
    forward marginal at T)."""
    return choice("target", target, TARGETS), choice("init", init, INITS)


class RunSpan:
    """The steps a rule runs, from its ``schedule`` and ``target`` (shared by the rule
    classes): ``T``, ``stop`` (the output's index: 1 for target q1, 0 for the data) and
    ``steps`` = T, T-1, ..., stop + 1."""

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def stop(self) -> int:
        return 1 if self.target == "q1" else 0

    @property
    def steps(self):
        return range(self.T, self.stop, -1)


def _matrix(x, shape, name):
    arr = np.array(x, dtype=np.float64, ndmin=2) if len(shape) == 2 else \
        np.array(x, dtype=np.float64, ndmin=1)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} is not finite")
    return arr


@dataclass(frozen=True)
class Tableau:
    """One step of a :class:`StageRule` (module docstring): ``s`` stages, state size ``m``.

    Parameters
    ----------
    abar : array-like, shape (s,)
        Noise levels of the score evaluations, each in (0, 1].
    P : array-like, shape (s, m)
        State -> stage points.
    Q : array-like, shape (s, s)
        Earlier stage scores -> stage points (strictly lower triangular).
    A : array-like, shape (m, m)
        State -> new state.
    B : array-like, shape (m, s)
        Stage scores -> new state.
    c, pre_c : float
        Noise added to the new sample (after) and to the sample before the stages.
    """

    abar: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    B: np.ndarray
    c: float = 0.0
    pre_c: float = 0.0

    def __post_init__(self):
        abar = np.array(self.abar, dtype=np.float64, ndmin=1)
        if abar.ndim != 1 or not np.all(np.isfinite(abar)) or np.any(abar <= 0) or \
                np.any(abar > 1):
            raise ValueError("stage noise levels abar must lie in (0, 1]")
        s = abar.size
        A = np.array(self.A, dtype=np.float64, ndmin=2)
        m = A.shape[0]
        object.__setattr__(self, "abar", abar)
        object.__setattr__(self, "A", _matrix(A, (m, m), "A"))
        object.__setattr__(self, "P", _matrix(self.P, (s, m), "P"))
        object.__setattr__(self, "Q", _matrix(self.Q, (s, s), "Q"))
        object.__setattr__(self, "B", _matrix(self.B, (m, s), "B"))
        if np.any(np.triu(self.Q) != 0):
            raise ValueError("Q must be strictly lower triangular (a stage uses earlier stages)")
        for key in ("c", "pre_c"):
            v = float(getattr(self, key))
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{key} must be a non-negative number, got {v}")
            object.__setattr__(self, key, v)

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @property
    def s(self) -> int:
        return self.abar.size

    @property
    def needed(self) -> np.ndarray:
        """Stages whose score enters the result (a zero column in B and Q is skipped: the
        score at alpha_bar = 1 may not exist)."""
        return np.any(self.B != 0, axis=0) | np.any(self.Q != 0, axis=0)

    @property
    def deterministic(self) -> bool:
        return self.c == 0 and self.pre_c == 0


@dataclass(frozen=True)
class StageRule(RunSpan):
    """A sampler as one :class:`Tableau` per step (module docstring).

    ``tableaux[t]`` is the step ``t -> t-1`` for ``t = stop + 1..T`` (index 0 and unused steps
    ``None``); every tableau has the same state size. ``order``: the convergence order the
    method's paper states (recorded with results). ``target``, ``init``: as for
    :class:`~theory.samplers.AffineRule`.
    """

    name: str
    tableaux: tuple
    schedule: Schedule = field(repr=False)
    target: str = "q1"
    init: str = "standard-normal"
    order: Optional[float] = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        check_run(self.target, self.init)
        T = self.schedule.T
        tabs = tuple(self.tableaux)
        if len(tabs) != T + 1:
            raise ValueError(f"tableaux must have length T + 1 = {T + 1} (indexed by t), got "
                             f"{len(tabs)}")
        ms = set()
        for t in self.steps:
            if not isinstance(tabs[t], Tableau):
                raise ValueError(f"step t = {t} has no tableau" + (
                    " (target 'data' needs the step t = 1 into the data)" if t == 1 else ""))
            ms.add(tabs[t].m)
        if len(ms) != 1:
            raise ValueError(f"every tableau must have the same state size, got {sorted(ms)}")
        object.__setattr__(self, "tableaux", tabs)

    @property
    def m(self) -> int:
        return self.tableaux[self.T].m

    @property
    def deterministic(self) -> bool:
        return all(self.tableaux[t].deterministic for t in self.steps)

    @property
    def multistep(self) -> bool:
        """True if the state carries history (m > 1)."""
        return self.m > 1

    @property
    def score_calls(self) -> int:
        return int(sum(self.tableaux[t].needed.sum() for t in self.steps))

    def describe(self) -> dict:
        return {"sampler": self.name, "deterministic": self.deterministic, "kind": "stages",
                "state_size": self.m, "score_calls": self.score_calls,
                **({"order": self.order} if self.order is not None else {}),
                **({"target": self.target} if self.target != "q1" else {}),
                **({"init": self.init} if self.init != "standard-normal" else {})}


def as_stage_rule(rule) -> StageRule:
    """The :class:`StageRule` of an :class:`~theory.samplers.AffineRule` (one stage per step;
    state ``(Y, s_{t+1})`` for a rule with ``b_prev``): the same sampler, for the stage
    engines."""
    s = rule.schedule
    ab = s.alpha_bar
    tabs = [None] * (s.T + 1)
    for t in range(rule.stop + 1, s.T + 1):
        a, b, c, pc = rule.a[t], rule.b[t], rule.c[t], rule.pre_c[t]
        if rule.multistep:
            tabs[t] = Tableau([ab[t]], [[1.0, 0.0]], [[0.0]], [[a, rule.b_prev[t]], [0.0, 0.0]],
                              [[b], [1.0]], c, pc)
        else:
            tabs[t] = Tableau([ab[t]], [[1.0]], [[0.0]], [[a]], [[b]], c, pc)
    return StageRule(rule.name, tuple(tabs), s, rule.target, rule.init,
                     info={"from": "AffineRule"})


# -- built-in rules ---------------------------------------------------------------------

BUTCHER = {
    "euler": ([0.0], [[0.0]], [1.0]),
    "heun": ([0.0, 1.0], [[0.0, 0.0], [1.0, 0.0]], [0.5, 0.5]),
    "rk4": ([0.0, 0.5, 0.5, 1.0],
            [[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1.0, 0]],
            [1 / 6, 1 / 3, 1 / 3, 1 / 6]),
}


def _rk_tableau(s: Schedule, t: int, method: str) -> Tableau:
    r"""Explicit Runge-Kutta step of ``d ybar / d sigmabar = eps`` from step t to t-1.

    A stage at ``sigmabar_i = sigmabar_t + c_i Delta`` has
    ``X_i = sqrt(abar_i) (Y/sqrt(abar_t) + Delta sum_j a_ij eps_j)``, ``eps_j = -g_j S_j``,
    ``g = sqrt(1 - abar)``; the new sample is ``sqrt(abar_{t-1})(Y/sqrt(abar_t) + Delta sum_i
    b_i eps_i)``. Levels at c = 0 and c = 1 are the schedule's own values (no roundoff)."""
    cs, a, b = BUTCHER[method]
    ab, om = s.alpha_bar, s.one_minus_alpha_bar
    sig_t, sig_p = math.sqrt(om[t] / ab[t]), math.sqrt(om[t - 1] / ab[t - 1])
    delta = sig_p - sig_t
    levels, g = [], []
    for ci in cs:
        if ci == 0:
            levels.append(ab[t]), g.append(math.sqrt(om[t]))
        elif ci == 1:
            levels.append(ab[t - 1]), g.append(math.sqrt(om[t - 1]))
        else:
            sg = sig_t + ci * delta
            levels.append(1 / (1 + sg * sg)), g.append(sg / math.sqrt(1 + sg * sg))
    n = len(cs)
    sq = np.sqrt(levels)
    P = (sq / math.sqrt(ab[t]))[:, None]
    Q = np.zeros((n, n))
    for i in range(n):
        for j in range(i):
            Q[i, j] = -sq[i] * delta * a[i][j] * g[j]
    A = [[math.sqrt(ab[t - 1] / ab[t])]]
    B = [[-math.sqrt(ab[t - 1]) * delta * b[i] * g[i] for i in range(n)]]
    return Tableau(levels, P, Q, A, B)


def _rk_rule(name, s, method, order, final="same"):
    tabs = [None] * (s.T + 1)
    for t in range(1, s.T + 1):
        tabs[t] = _rk_tableau(s, t, "euler" if (t == 1 and final == "euler") else method)
    return tabs, order


def _phi2(h):
    """(e^{-h} - 1)/h + 1 without cancellation."""
    if h < 1e-3:
        return h * (0.5 - h * (1 / 6 - h * (1 / 24 - h / 120)))
    return math.expm1(-h) / h + 1


def _phi3(h):
    """(e^{-h} - 1 + h)/h^2 - 1/2 without cancellation."""
    if h < 2e-2:
        return -h * (1 / 6 - h * (1 / 24 - h * (1 / 120 - h * (1 / 720 - h / 5040))))
    return (math.expm1(-h) + h) / (h * h) - 0.5


def _dpm_multistep(s: Schedule, order: int, d2_factor: float = 2.0):
    r"""DPM-Solver++(2M) / (3M) as tableaux with state (Y, D_{t+1}, D_{t+2}).

    With alpha = sqrt(abar), sigma = sqrt(1 - abar), lambda = log(alpha/sigma), h = lambda_{t-1}
    - lambda_t, the data prediction D_t = (Y + sigma_t^2 S)/alpha_t and the previous ones
    m1 = D_{t+1}, m2 = D_{t+2} (r0 = h_0/h, r1 = h_1/h for the previous step sizes):

    * first order: Y' = (sigma_{t-1}/sigma_t) Y - alpha_{t-1}(e^{-h} - 1) D_t (DDIM);
    * second order (midpoint, Algorithm 2 of arXiv:2211.01095): D_t replaced by
      D_t + (D_t - m1)/(2 r0);
    * third order: Y' = (sigma_{t-1}/sigma_t) Y - alpha_{t-1}(e^{-h} - 1) D_t
      + alpha_{t-1} phi_2(h) D1 - k alpha_{t-1} phi_3(h) D2 with D1_0 = (D_t - m1)/r0,
      D1_1 = (m1 - m2)/r1, D1 = D1_0 + r0/(r0 + r1)(D1_0 - D1_1), D2 = (D1_0 - D1_1)/(r0 + r1),
      phi_2 = (e^{-h} - 1)/h + 1, phi_3 = (e^{-h} - 1 + h)/h^2 - 1/2, and k = ``d2_factor``
      (2: third order; 1: the authors' code and diffusers, module docstring).

    The k-th step from the start uses order min(k, ``order``); the step into the data is
    first order.
    """
    T = s.T
    lab, om = s.log_alpha_bar, s.one_minus_alpha_bar
    ab = s.alpha_bar
    lam = np.full(T + 1, np.inf)
    lam[1:] = 0.5 * (lab[1:] - np.log(om[1:]))
    tabs = [None] * (T + 1)
    m = 3 if order == 3 else 2
    for t in range(T, 0, -1):
        al_t, sg_t = math.sqrt(ab[t]), math.sqrt(om[t])
        al_p, sg_p = math.sqrt(ab[t - 1]), math.sqrt(om[t - 1])
        k = min(T - t + 1, order) if t > 1 else 1
        # D_t = Y / al_t + (om_t / al_t) S: coefficients of Y_new on D_t, m1, m2
        if t == 1:
            cD = np.array([1.0, 0.0, 0.0])           # Y_0 = D_1
            ratio = 0.0
        else:
            h = lam[t - 1] - lam[t]
            phi1 = -al_p * math.expm1(-h)             # coefficient of D_t (first order)
            ratio = sg_p / sg_t
            if k == 1:
                cD = np.array([phi1, 0.0, 0.0])
            elif k == 2:
                r0 = (lam[t] - lam[t + 1]) / h
                cD = np.array([phi1 * (1 + 0.5 / r0), -phi1 * 0.5 / r0, 0.0])
            else:
                r0 = (lam[t] - lam[t + 1]) / h
                r1 = (lam[t + 1] - lam[t + 2]) / h
                p2, p3 = al_p * _phi2(h), al_p * _phi3(h)
                # D1_0 = (D - m1)/r0, D1_1 = (m1 - m2)/r1
                d10 = np.array([1 / r0, -1 / r0, 0.0])
                d11 = np.array([0.0, 1 / r1, -1 / r1])
                D1 = d10 + r0 / (r0 + r1) * (d10 - d11)
                D2 = (d10 - d11) / (r0 + r1)
                cD = np.array([phi1, 0.0, 0.0]) + p2 * D1 - d2_factor * p3 * D2
        A = np.zeros((m, m))
        B = np.zeros((m, 1))
        A[0, 0] = ratio + cD[0] / al_t
        A[0, 1:] = cD[1:m]
        B[0, 0] = cD[0] * om[t] / al_t
        A[1, 0], B[1, 0] = 1 / al_t, om[t] / al_t           # new history: D_t
        if m == 3:
            A[2, 1] = 1.0                                     # D_{t+1} moves back
        P = np.zeros((1, m))
        P[0, 0] = 1.0
        tabs[t] = Tableau([ab[t]], P, [[0.0]], A, B)
    return tabs, float(order)


_BUILDERS = {
    "heun": lambda s: _rk_rule("heun", s, "heun", 2.0, final="euler"),
    "rk4": lambda s: _rk_rule("rk4", s, "rk4", 4.0),
    "dpm++2m": lambda s: _dpm_multistep(s, 2),
    "dpm++3m": lambda s: _dpm_multistep(s, 3),
    "dpm++3m-ref": lambda s: _dpm_multistep(s, 3, d2_factor=1.0),
}
STAGE_SAMPLERS = tuple(_BUILDERS)
# the orders stated (dpm++3m-ref: the order of the update as written, second; module docstring)
STAGE_ORDERS = {"heun": 2.0, "rk4": 4.0, "dpm++2m": 2.0, "dpm++3m": 3.0, "dpm++3m-ref": 2.0}


def stage_rule(name: str, schedule: Schedule, *, target: str = "q1",
               init: str = "standard-normal") -> StageRule:
    """A built-in multi-stage or multistep rule (module docstring) on ``schedule``."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown multi-stage sampler {name!r}; choose from "
                         f"{', '.join(STAGE_SAMPLERS)}")
    tabs, _ = _BUILDERS[name](schedule)
    return StageRule(name, tuple(tabs), schedule, target, init, STAGE_ORDERS[name])
