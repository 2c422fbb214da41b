r"""Score errors of prescribed size: THEORY.md section 2.

The theorems charge an imperfect score through

.. math::
    \varepsilon_{score}^2 = \frac1T \sum_t E_{q_t}\|s_t - s^\star_t\|^2, \qquad
    \varepsilon_{Jacobi} = \frac1T \sum_t E_{q_t}\|\nabla s_t - \nabla s^\star_t\|_{op}

(sums over the steps the sampler uses, t = 2..T). Each perturbation below acts coordinate by
coordinate on a product prior, so the sampler's output law stays exact
(:func:`theory.distances.exact.exact_distance` with ``perturbation=``), and
:meth:`ScorePerturbation.injected` returns the two quantities it actually injected, computed
by Gauss-Hermite quadrature under each :math:`q_t` (not by sampling).

* :class:`AdditiveField`: :math:`s_t(x) = s^\star_t(x) + \varepsilon \sin(\omega x)` per
  coordinate (smooth, bounded).
* :class:`WrongWeights`: the exact score of the prior with other mixture weights.
* :class:`WrongVariances`: the exact score of the prior with component variances times a factor.
* :class:`StepNoise`: :math:`s_t + \varepsilon\xi_t`, :math:`\xi_t \sim N(0, I)` fresh at every
  step; the rule stays affine with :math:`c_t^2 \to c_t^2 + b_t^2\varepsilon^2`, so
  :math:`\varepsilon_{score}^2 = d\,\varepsilon^2 (T-1)/T` and :math:`\varepsilon_{Jacobi} = 0`.
"""
from __future__ import annotations

import math

import numpy as np
from ._lazy import torch

from .mixture1d import Mixture1D, score_rows
from .checks import NoExactLaw, nonnegative
from .priors import ProductPrior
from .samplers import AffineRule, AnalyticScore

__all__ = ["ScorePerturbation", "AdditiveField", "WrongWeights", "WrongVariances", "StepNoise",
           "make_perturbation", "PERTURBATIONS"]

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(80)   # probabilists' Hermite, weight e^{-x^2/2}
_GH_W = _GH_W / _GH_W.sum()


def _mixture_nodes(mix: Mixture1D):
    """Quadrature nodes and weights for E under a 1-D mixture (exact for polynomials to degree 159)."""
    x = (mix.m[:, None] + np.sqrt(mix.v)[:, None] * _GH_X[None, :]).ravel()
    w = (mix.w[:, None] * _GH_W[None, :]).ravel()
    return x, w


class ScorePerturbation:
    """A coordinate-wise perturbation of the exact score of a product prior."""

    name = "perturbation"
    affine = False
    # Beyond this size the score error swamps the score (eps = 100 already gives TV near 1
    # with intervals [0.2, 1]) and the perturbed output law spreads past any grid the exact
    # engine can hold (step-noise at eps = 1e4 ran for minutes): refused.
    max_eps = 100.0
    why_max = "larger errors swamp the score and the output law leaves the exact engine's grid"

    def __init__(self, eps: float):
        eps = nonnegative("eps", eps)
        if eps > self.max_eps:
            raise ValueError(f"eps = {eps:g} is outside [0, {self.max_eps:g}] for the "
                             f"{self.name} perturbation: {self.why_max}")
        self.eps = eps

    def key(self) -> tuple:
        return (self.name, self.eps)

    def describe(self) -> dict:
        return {"perturbation": self.name, "eps": self.eps}

    # -- the perturbed 1-D score -------------------------------------------------------
    def delta_1d(self, mix: Mixture1D, marg: Mixture1D, abar: float, x):
        """(s - s*, s' - s*') at x for the marginal ``marg`` of ``mix`` at ``abar``."""
        raise NotImplementedError

    def score_1d(self, mix: Mixture1D, schedule):
        """``score(t, x) -> (s, s')``, the perturbed score of the marginal at step t; its
        ``rows(ts)`` gives the same for a block of steps at once, ``y -> (S, S')`` on arrays
        of shape (len(ts), n) (:meth:`rows_1d`; the grid engine's batched step maps)."""
        ab, om = schedule.alpha_bar, schedule.one_minus_alpha_bar

        def score(t, x):
            marg = mix.marginal(ab[t], om[t])
            s, ds = marg.score_and_derivative(x)
            d, dd = self.delta_1d(mix, marg, ab[t], x)
            return s + d, ds + dd
        score.rows = lambda ts: self.rows_1d(mix, ab[ts], om[ts])
        return score

    def rows_1d(self, mix: Mixture1D, ab, om):
        """Rows of the perturbed score at the noise levels ``ab`` (B,), ``om`` = 1 - ab:
        ``y -> (S, S')`` with one row per level, the exact rows (:func:`score_rows`) plus
        :meth:`delta_rows`."""
        M, V = np.sqrt(ab)[:, None] * mix.m, ab[:, None] * mix.v + om[:, None]

        def rows(y):
            S, D = score_rows(mix.w, M, V, y)
            d, dd = self.delta_rows(mix, ab, om, y)
            return S + d, D + dd
        return rows

    def delta_rows(self, mix: Mixture1D, ab, om, y):
        """(s - s*, s' - s*') on rows ``y`` (B, n), one noise level per row: by default one
        :meth:`delta_1d` call per row."""
        y = np.broadcast_to(y, (len(ab), np.shape(y)[-1]))
        out = [self.delta_1d(mix, mix.marginal(a, o), a, r) for a, o, r in zip(ab, om, y)]
        return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])

    def adjust_rule(self, rule: AffineRule) -> AffineRule:
        return rule

    # -- the same perturbation as a torch score for run_sampler ---------------------------
    def torch_score(self, prior: ProductPrior, schedule, generator=None):
        """Callable ``(x, t)`` for :func:`theory.samplers.run_sampler`."""
        _require_product(prior)
        params = [prior.coordinate_params(i) for i in range(prior.dim)]
        mixes = [Mixture1D(w, m, sd ** 2) for w, m, sd in params]
        fns = [self.score_1d(mx, schedule) for mx in mixes]

        def score(x, t):
            xn = x.detach().cpu().numpy()
            out = np.stack([fns[i](t, xn[:, i])[0] for i in range(prior.dim)], axis=1)
            return torch.as_tensor(out, dtype=x.dtype, device=x.device)
        return score

    # -- what was injected ----------------------------------------------------------------
    def injected(self, prior: ProductPrior, schedule) -> dict:
        """eps_score and eps_Jacobi of THEORY.md section 2, by quadrature under each q_t."""
        _require_product(prior)
        groups = prior.coordinate_groups()
        mixes = []
        for i, mult in groups:
            w, m, sd = prior.coordinate_params(i)
            mixes.append((Mixture1D(w, m, sd ** 2), mult))
        ab, om = schedule.alpha_bar, schedule.one_minus_alpha_bar
        T = schedule.T
        sq_sum = 0.0
        jac_sum = 0.0
        for t in range(2, T + 1):
            sq_t = 0.0
            samples = []
            for mix, mult in mixes:
                marg = mix.marginal(ab[t], om[t])
                x, w = _mixture_nodes(marg)
                d, dd = self.delta_1d(mix, marg, ab[t], x)
                sq_t += mult * float(np.sum(w * d * d))
                samples.append((np.abs(dd), w, mult))
            sq_sum += sq_t
            jac_sum += _expected_max(samples)
        return {"eps_score": math.sqrt(sq_sum / T), "eps_jacobi": jac_sum / T,
                "method": "Gauss-Hermite quadrature under each q_t (80 nodes per component)"}


def _expected_max(samples):
    """E max_i |D_i| for independent coordinates: int_0^inf 1 - prod_g F_g(u)^{m_g} du, with
    each F_g the discrete law of the quadrature nodes."""
    vals = np.unique(np.concatenate([s[0] for s in samples]))
    if vals.size == 0 or vals[-1] == 0:
        return 0.0
    logF = np.zeros_like(vals)
    for v, w, mult in samples:
        order = np.argsort(v)
        cdf = np.cumsum(w[order]) / w.sum()
        idx = np.searchsorted(v[order], vals, side="right") - 1
        F = np.where(idx >= 0, cdf[np.maximum(idx, 0)], 0.0)
        with np.errstate(divide="ignore"):
            logF += mult * np.log(np.maximum(F, 1e-300))
    # P(max <= u) is a step function, constant on [vals[j], vals[j+1])
    surv = 1 - np.exp(logF)
    edges = np.concatenate([[0.0], vals])
    return float(np.sum(np.concatenate([[1.0], surv[:-1]]) * np.diff(edges)))


def _require_product(prior):
    if not isinstance(prior, ProductPrior):
        raise ValueError("score perturbations are defined coordinate-wise on product priors")


class AdditiveField(ScorePerturbation):
    """``s + eps sin(freq x)`` in every coordinate."""

    name = "additive-field"

    def __init__(self, eps: float, freq: float = 1.0):
        super().__init__(eps)
        self.freq = float(freq)

    def key(self):
        return (self.name, self.eps, self.freq)

    def describe(self):
        return {**super().describe(), "freq": self.freq}

    def delta_1d(self, mix, marg, abar, x):
        return self.eps * np.sin(self.freq * x), self.eps * self.freq * np.cos(self.freq * x)

    def delta_rows(self, mix, ab, om, y):
        return self.delta_1d(mix, None, None, y)


class WrongWeights(ScorePerturbation):
    """The exact score of the prior with weights ``(1 - eps) w + eps w'``, where ``w'`` is
    uniform unless ``target_weights`` is given."""

    name = "wrong-weights"
    max_eps = 1.0
    why_max = "the weights (1 - eps) w + eps w' are a convex combination"

    def __init__(self, eps: float, target_weights=None):
        super().__init__(eps)
        self.target_weights = None if target_weights is None else np.asarray(target_weights, float)

    def _wrong(self, mix):
        K = mix.w.size
        tw = np.full(K, 1.0 / K) if self.target_weights is None else self.target_weights
        if tw.size != K:
            raise ValueError("target_weights must have one entry per component")
        w = (1 - self.eps) * mix.w + self.eps * tw
        return w / w.sum()

    def delta_1d(self, mix, marg, abar, x):
        wrong = Mixture1D(self._wrong(mix), marg.m, marg.v)
        s0, d0 = marg.score_and_derivative(x)
        s1, d1 = wrong.score_and_derivative(x)
        return s1 - s0, d1 - d0

    def rows_1d(self, mix, ab, om):        # the wrong mixture's own rows
        M, V = np.sqrt(ab)[:, None] * mix.m, ab[:, None] * mix.v + om[:, None]
        w = self._wrong(mix)
        return lambda y: score_rows(w, M, V, y)


class WrongVariances(ScorePerturbation):
    """The exact score of the prior with every component variance times ``1 + eps``."""

    name = "wrong-variances"

    def delta_1d(self, mix, marg, abar, x):
        wrong = Mixture1D(mix.w, mix.m, mix.v * (1 + self.eps)).marginal(abar)
        s0, d0 = marg.score_and_derivative(x)
        s1, d1 = wrong.score_and_derivative(x)
        return s1 - s0, d1 - d0

    def rows_1d(self, mix, ab, om):        # the wrong mixture's own rows
        M = np.sqrt(ab)[:, None] * mix.m
        V = ab[:, None] * (mix.v * (1 + self.eps)) + (1 - ab)[:, None]   # as delta_1d
        return lambda y: score_rows(mix.w, M, V, y)


class StepNoise(ScorePerturbation):
    """``s + eps xi_t`` with fresh standard normal ``xi_t`` at every step (affine: exact for any
    prior the exact engine handles)."""

    name = "step-noise"
    affine = True

    def delta_1d(self, mix, marg, abar, x):   # mean-zero: no bias, no Jacobian error
        return np.zeros_like(x), np.zeros_like(x)

    def delta_rows(self, mix, ab, om, y):
        return np.zeros_like(y), np.zeros_like(y)

    def adjust_rule(self, rule):
        if rule.multistep:           # the noise of s_{t+1} would enter twice, correlated
            raise NoExactLaw("step-noise perturbations of two-step rules have no exact law")
        c = np.sqrt(rule.c ** 2 + (rule.b * self.eps) ** 2)
        return AffineRule(f"{rule.name}+step-noise({self.eps:g})", rule.a, rule.b, c,
                          rule.schedule, rule.pre_c, target=rule.target, init=rule.init)

    def torch_score(self, prior, schedule, generator=None):
        exact = AnalyticScore(prior, schedule)

        def score(x, t):
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            return exact(x, t) + self.eps * z
        return score

    def injected(self, prior, schedule):
        T = schedule.T
        return {"eps_score": self.eps * math.sqrt(prior.dim * (T - 1) / T), "eps_jacobi": 0.0,
                "method": "closed form"}


PERTURBATIONS = {"additive-field": AdditiveField, "wrong-weights": WrongWeights,
                 "wrong-variances": WrongVariances, "step-noise": StepNoise}


def make_perturbation(name: str, eps: float, **kw) -> ScorePerturbation:
    if not isinstance(name, str) or name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    return PERTURBATIONS[name](eps, **kw)
