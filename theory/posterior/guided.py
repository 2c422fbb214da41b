r"""Guided reverse diffusions: DPS, PiGDM, moment matching (TMPD / MMPS) and DiffPIR
(THEORY.md section 7). Each is one Markov chain in x on Ho's linear schedule rescaled to
T = NFE steps (t = T..2, then the final Tweedie step at t = 1: T score calls per output), so
each also returns its steps (:meth:`chain`) for the exact 1-D / 2-D grid engines.

Notation: :math:`\hat x_0 = (x_t + (1-\bar\alpha_t)s_t)/\sqrt{\bar\alpha_t}`,
:math:`J = \partial\hat x_0/\partial x_t` (:mod:`theory.posterior.tweedie`). The DDIM(eta)
step of a score :math:`\tilde s` is
:math:`x_{t-1} = \sqrt{\bar\alpha_{t-1}}\hat x_0 + \sqrt{1-\bar\alpha_{t-1}-\sigma_t^2}\,\hat\varepsilon + \sigma_t z`,
:math:`\sigma_t = \eta\sqrt{(1-\bar\alpha_{t-1})/(1-\bar\alpha_t)}\sqrt{1-\bar\alpha_t/\bar\alpha_{t-1}}`,
i.e. the affine rule :math:`a_t x + b_t\tilde s + c_t z` of :func:`ddim_coefficients`
(eta = 1 is Ho's ancestral step, the ``ddpm`` rule of :mod:`theory.samplers`).

* **DPS** (Chung et al., ICLR 2023, arXiv:2209.14687): :func:`theory.posterior.dps.run_dps`
  (DDPM step, then :math:`-\zeta'\nabla_{x_t}\|y - A\hat x_0\|^2/\|y - A\hat x_0\|`; the official
  code's ``scale`` is :math:`2\zeta'`).
* **PiGDM** (Song, Vahdat, Mardani, Kautz, ICLR 2023, openreview 9_gsMA8MRKQ):
  :math:`p(x_0 \mid x_t) \approx N(\hat x_0, r_t^2 I)`, so
  :math:`g = J^\top A^\top(r_t^2 AA^\top + \sigma_y^2 I)^{-1}(y - A\hat x_0)`, with
  :math:`r_t^2 = v(1-\bar\alpha_t)/(\bar\alpha_t v + 1-\bar\alpha_t)` (the exact
  :math:`\mathrm{Var}[x_0 \mid x_t]` of an :math:`N(0, vI)` prior; v = 1 gives
  :math:`1-\bar\alpha_t`). ``weighting="score"`` (default): g is added to the prior score
  inside the DDIM(eta) step (so for an N(0, I) prior and a linear-Gaussian likelihood the
  chain is the DDIM chain of the exact posterior score); ``weighting="paper"``: the DDIM step
  of the prior score plus :math:`\sqrt{\bar\alpha_t}\,r_t^2 g`, as the paper's Algorithm 1
  is reproduced by the TMPD authors (``ReproducePiGDMVP``, github.com/bb515/tmpdjax) and by
  azula's ``PGDMSampler`` (which has a further factor :math:`\sqrt{\bar\alpha_{t-1}}`); the
  paper's text was not readable here. That guidance is O(1) per step, so it does not tend to
  the posterior as T grows.
* **Moment matching** (TMPD: Boys et al., arXiv:2310.06721; MMPS: Rozet et al., NeurIPS 2024,
  arXiv:2405.13712): :math:`\mathrm{Cov}[x_0 \mid x_t] = \frac{1-\bar\alpha_t}{\bar\alpha_t}
  (I + (1-\bar\alpha_t)\nabla s_t)` (the analytic Jacobian), and
  :math:`g = J^\top A^\top(\sigma_y^2 I + A\,\mathrm{Cov}\,A^\top)^{-1}(y - A\hat x_0)`, added to
  the score in the DDIM(eta) step (eta = 1 default: TMPD's DDPM form). For a Gaussian prior and
  a linear-Gaussian likelihood g is the exact :math:`\nabla\log p(y \mid x_t)`.
* **DiffPIR** (Zhu et al., CVPR 2023 workshops, arXiv:2305.08995):
  :math:`x_0' = \arg\min_x -\ell(x) + \frac{\lambda}{2\bar\sigma_t^2}\|x - \hat x_0\|^2`
  (:math:`\bar\sigma_t^2 = (1-\bar\alpha_t)/\bar\alpha_t`; Gaussian case: the paper's
  :math:`\|y - Ax\|^2 + \rho_t\|x - \hat x_0\|^2`, :math:`\rho_t = \lambda\sigma_y^2/\bar\sigma_t^2`,
  solved exactly through the SVD of A; other likelihoods: ``prox_steps`` gradient steps), then
  :math:`\varepsilon' = (x_t - \sqrt{\bar\alpha_t}x_0')/\sqrt{1-\bar\alpha_t}`,
  :math:`x_{t-1} = \sqrt{\bar\alpha_{t-1}}x_0' + \sqrt{1-\bar\alpha_{t-1}}(\sqrt{1-\zeta}\,\varepsilon' + \sqrt\zeta\,z)`;
  output :math:`x_0'` at t = 1.

Non-Gaussian likelihoods (phase retrieval, 1-bit) enter PiGDM and moment matching through
the linearised / moderated Gaussian approximation of :func:`theory.posterior.tweedie.surrogate_grad`.
No clipping anywhere (vector data, not images).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..priors import Prior, ProductPrior
from ..samplers import AnalyticScore, sampler_rule
from ..schedules import linear_schedule
from .dps import dps_guidance, run_dps
from .interface import ChainSpec, GaussianStep, Knob, PosteriorSampler, torch_map
from .likelihoods import Likelihood
from .tweedie import jac_t, posterior_cov_times, surrogate_grad, tweedie

__all__ = ["ddim_coefficients", "DPS", "PiGDM", "MomentMatching", "DiffPIR"]

DTYPE = torch.float64


def ddim_coefficients(schedule, eta: float):
    r"""``(a, b, c)`` arrays (index t = 0..T) of the DDIM(eta) step written as
    :math:`x_{t-1} = a_t x_t + b_t s_t(x_t) + c_t z` (module docstring)."""
    ab, om = schedule.alpha_bar, schedule.one_minus_alpha_bar
    T = schedule.T
    a, b, c = np.zeros(T + 1), np.zeros(T + 1), np.zeros(T + 1)
    t = np.arange(2, T + 1)
    # 1 - abar_t/abar_{t-1} = beta_t (consecutive steps), no cancellation
    sig2 = eta ** 2 * om[t - 1] / om[t] * schedule.beta[t]
    a[t] = np.sqrt(ab[t - 1] / ab[t])
    b[t] = np.sqrt(ab[t - 1]) * om[t] / np.sqrt(ab[t]) - np.sqrt(np.maximum(om[t - 1] - sig2, 0) * om[t])
    c[t] = np.sqrt(sig2)
    return a, b, c


class _GuidedChain(PosteriorSampler):
    """A chain :math:`x_{t-1} = \\mathrm{mean}_t(x_t) + c_t z` on the linear schedule with
    T = NFE steps, then an output map at t = 1. Subclasses give ``_setup`` (-> state),
    ``_mean(state, x, t)`` and ``_final(state, x)``; :meth:`_sample` and :meth:`chain` share
    them, so the chain's Monte Carlo run repeats the sampler's numbers."""

    family = "guided"

    def _setup(self, prior: Prior, lik: Likelihood, nfe: int) -> dict:
        sched = linear_schedule(nfe)
        st = {"prior": prior, "lik": lik, "sched": sched, "score": AnalyticScore(prior, sched),
              "abar": sched.alpha_bar, "T": sched.T}
        st["a"], st["b"], st["c"] = ddim_coefficients(sched, self.knobs.get("eta", 1.0))
        return st

    def _noise(self, st, t) -> float:
        return float(st["c"][t])

    def _sample(self, prior, lik, nfe, n, generator, device):
        st = self._setup(prior, lik, nfe)
        x = torch.randn(n, prior.dim, generator=generator, dtype=DTYPE, device=device)
        for t in range(st["T"], 1, -1):
            mean = self._mean(st, x, t)
            c = self._noise(st, t)
            if c > 0:
                mean = mean + c * torch.randn(x.shape, generator=generator, dtype=DTYPE,
                                              device=device)
            x = mean
        return self._final(st, x), {"extra": {"jvp_calls": st.get("jvp_per_step", 1) * st["T"]}}

    def chain(self, prior, lik, nfe):
        self.check_problem(prior, lik)
        st = self._setup(prior, lik, int(nfe))
        dev = prior.device
        steps = [GaussianStep(torch_map(lambda x, t=t: self._mean(st, x, t), dev),
                              self._noise(st, t), f"{self.name} t={t}")
                 for t in range(st["T"], 1, -1)]
        steps.append(GaussianStep(torch_map(lambda x: self._final(st, x), dev), 0.0,
                                  f"{self.name} output"))
        return ChainSpec(prior.dim, 1.0, steps, [f"{self.name}: {st['T'] - 1} guided steps on "
                                                 f"the linear schedule, then the output map"])

    # guided score chains share the DDIM step of s + g
    def _guided_mean(self, st, x, t, g_fn: Callable):
        marg = st["score"].marginal(t)
        s = marg.score(x)
        return st["a"][t] * x + st["b"][t] * (s + g_fn(marg, x, s, t))


class DPS(_GuidedChain):
    """DPS (Chung et al. 2023, arXiv:2209.14687), through :func:`theory.posterior.dps.run_dps`
    (module docstring). Its chain steps use the same guidance function."""

    name = "dps"
    reference = "Chung, Kim, McCann, Klasky, Ye, ICLR 2023, arXiv:2209.14687"
    KNOBS = {"zeta": Knob(0.5, "nonnegative",
                          "zeta' of x -= zeta' grad ||y - A x0_hat||^2 / ||y - A x0_hat||; "
                          "0.5 = the official code's scale 1.0 (scale = 2 zeta')")}

    def _sample(self, prior, lik, nfe, n, generator, device):
        res = run_dps(prior, lik, n, T=nfe, zeta=self.knobs["zeta"], generator=generator,
                      device=device)
        return res.samples, {"nfe": res.score_calls, "extra": {"jvp_calls": nfe - 1}}

    def _setup(self, prior, lik, nfe):
        st = super()._setup(prior, lik, nfe)
        rule = sampler_rule("ddpm", st["sched"])
        st["a"], st["b"], st["c"] = rule.a, rule.b, rule.c
        return st

    def _mean(self, st, x, t):
        marg = st["score"].marginal(t)
        s = marg.score(x)
        ab, om = float(st["abar"][t]), float(st["sched"].one_minus_alpha_bar[t])
        return (st["a"][t] * x + st["b"][t] * s
                - self.knobs["zeta"] * dps_guidance(marg, st["lik"], x, s, ab, om))

    def _final(self, st, x):
        return st["prior"].denoise(x, float(st["abar"][1]))


class PiGDM(_GuidedChain):
    """PiGDM (Song, Vahdat, Mardani, Kautz, ICLR 2023), module docstring."""

    name = "pigdm"
    reference = "Song, Vahdat, Mardani, Kautz, ICLR 2023 (openreview 9_gsMA8MRKQ)"
    KNOBS = {"eta": Knob(1.0, "unit", "DDIM eta (1.0: the paper's choice, the ancestral step)"),
             "data_var": Knob(1.0, "positive",
                              "v in r_t^2 = v(1-abar)/(abar v + 1-abar); v = 1: r_t^2 = 1-abar, "
                              "the paper's VP choice, exact for an N(0, I) prior"),
             "weighting": Knob("score", "choice",
                               "score: g enters the DDIM step as a score (exact on N(0,I)); "
                               "paper: DDIM step + sqrt(abar_t) r_t^2 g (module docstring)",
                               ("score", "paper"))}

    def _r2(self, abar):
        v = self.knobs["data_var"]
        return v * (1 - abar) / (abar * v + 1 - abar)

    def _g(self, st, marg, x, s, t):
        abar = float(st["abar"][t])
        x0 = tweedie(x, s, abar)
        return jac_t(marg, x, surrogate_grad(st["lik"], x0, self._r2(abar)), abar)

    def _mean(self, st, x, t):
        if self.knobs["weighting"] == "score":
            return self._guided_mean(st, x, t, lambda m, x_, s, t_: self._g(st, m, x_, s, t_))
        marg = st["score"].marginal(t)
        s = marg.score(x)
        abar = float(st["abar"][t])
        return (st["a"][t] * x + st["b"][t] * s
                + math.sqrt(abar) * self._r2(abar) * self._g(st, marg, x, s, t))

    def _final(self, st, x):
        marg = st["score"].marginal(1)
        s = marg.score(x)
        abar = float(st["abar"][1])
        return tweedie(x, s + self._g(st, marg, x, s, 1), abar)


class MomentMatching(_GuidedChain):
    """Moment matching (TMPD / MMPS), module docstring: the guidance with the analytic
    covariance :math:`\\mathrm{Cov}[x_0 \\mid x_t]`."""

    name = "moment-matching"
    reference = ("Boys et al. (TMPD), arXiv:2310.06721; Rozet, Andry, Lanusse, Louppe (MMPS), "
                 "NeurIPS 2024, arXiv:2405.13712")
    KNOBS = {"eta": Knob(1.0, "unit", "DDIM eta (1.0: TMPD's DDPM form)")}

    def _setup(self, prior, lik, nfe):
        st = super()._setup(prior, lik, nfe)
        st["jvp_per_step"] = 1 + (1 if isinstance(prior, ProductPrior) else lik.A.shape[0])
        return st

    def _g(self, st, marg, x, s, t):
        abar = float(st["abar"][t])
        x0 = tweedie(x, s, abar)
        c = (1 - abar) / abar
        if isinstance(marg, ProductPrior):
            cov = c * (1 + (1 - abar) * marg.score_jacobian_diag(x))
            grad = surrogate_grad(st["lik"], x0, cov_diag=cov)
        else:
            grad = surrogate_grad(st["lik"], x0,
                                  cov_times=lambda V: posterior_cov_times(marg, x, V, abar))
        return jac_t(marg, x, grad, abar)

    def _mean(self, st, x, t):
        return self._guided_mean(st, x, t, lambda m, x_, s, t_: self._g(st, m, x_, s, t_))

    def _final(self, st, x):
        marg = st["score"].marginal(1)
        s = marg.score(x)
        return tweedie(x, s + self._g(st, marg, x, s, 1), float(st["abar"][1]))


class DiffPIR(_GuidedChain):
    """DiffPIR (Zhu et al. 2023, arXiv:2305.08995), module docstring."""

    name = "diffpir"
    reference = "Zhu, Zhang, Liang, Cao, Wen, Timofte, Van Gool, CVPR 2023 workshops, arXiv:2305.08995"
    KNOBS = {"lam": Knob(7.0, "positive", "lambda of rho_t = lambda sigma_y^2 / sigma_bar_t^2 "
                                           "(7: the paper's deblurring value, recalled)"),
             "zeta": Knob(0.3, "unit", "zeta: share of fresh noise in the re-noising step "
                                       "(0.3: the paper's deblurring value, recalled)"),
             "prox_steps": Knob(1, "int", "gradient steps of the proximal step for "
                                           "non-Gaussian likelihoods (1: the paper's single step)")}

    def _setup(self, prior, lik, nfe):
        st = super()._setup(prior, lik, nfe)
        st["om"] = st["sched"].one_minus_alpha_bar
        if lik.linear_gaussian:
            U, S, Vh = torch.linalg.svd(lik.A, full_matrices=False)
            keep = S > 1e-12 * S.max()
            st["V"], st["s2"] = Vh[keep].T, S[keep] ** 2
            st["Aty"] = lik.y @ lik.A
        return st

    def _noise(self, st, t):
        return float(math.sqrt(st["om"][t - 1] * self.knobs["zeta"]))

    def _prox(self, st, x0, t):
        lik = st["lik"]
        sig_bar2 = float(st["om"][t] / st["abar"][t])
        if lik.linear_gaussian:
            rho = self.knobs["lam"] * lik.sigma ** 2 / sig_bar2
            b = st["Aty"][None] + rho * x0                             # A^T y + rho x0
            V = st["V"]
            bv = b @ V
            return (bv / (st["s2"] + rho)) @ V.T + (b - bv @ V.T) / rho
        w = self.knobs["lam"] / sig_bar2
        h = 1.0 / (1.0 / lik.step_scale() + w)
        x = x0
        for _ in range(self.knobs["prox_steps"]):
            x = x - h * (-lik.grad(x) + w * (x - x0))
        return x

    def _mean(self, st, x, t):
        marg = st["score"].marginal(t)
        abar = float(st["abar"][t])
        x0p = self._prox(st, tweedie(x, marg.score(x), abar), t)
        eps = (x - math.sqrt(abar) * x0p) / math.sqrt(float(st["om"][t]))
        return (math.sqrt(float(st["abar"][t - 1])) * x0p
                + math.sqrt(float(st["om"][t - 1]) * (1 - self.knobs["zeta"])) * eps)

    def _final(self, st, x):
        marg = st["score"].marginal(1)
        return self._prox(st, tweedie(x, marg.score(x), float(st["abar"][1])), 1)

    def _sample(self, prior, lik, nfe, n, generator, device):
        x, info = super()._sample(prior, lik, nfe, n, generator, device)
        info["extra"] = {"jvp_calls": 0}
        return x, info
