r"""Annealed Langevin samplers in the VE variable: Score-ALD and DAPS (THEORY.md section 7).

VE scores come from the VP marginals (:func:`theory.posterior.tweedie.ve_score`):
:math:`s(x; \beta)` is the score of :math:`p * N(0, \beta^2 I)`.

* **Score-ALD** (Jalal, Arvinte, Daras, Price, Dimakis, Tamir, NeurIPS 2021,
  arXiv:2108.01368): levels :math:`\beta_1 > \dots > \beta_L` geometric from ``sigma_max`` to
  ``sigma_min``, ``steps_per_level`` steps at each,

  .. math::
      x \leftarrow x + \eta_l\big[s(x; \beta_l) + \nabla_x \log p_{\gamma_l}(y \mid x)\big]
      + \sqrt{2\eta_l}\,z, \qquad \eta_l = \epsilon\,\beta_l^2/\beta_L^2,

  with :math:`\log p_{\gamma}(y \mid x)` the likelihood with its noise variance inflated by
  :math:`\gamma_l^2` (linear-Gaussian: :math:`A^\top(y - Ax)/(\sigma_y^2 + \gamma_l^2)`, the
  paper's form), :math:`\gamma_l` = ``gamma_scale`` :math:`\beta_l`. The step is written with
  ``step_ratio`` :math:`= \eta_l/\beta_l^2 = \epsilon/\beta_L^2` (0.2: NCSN's
  :math:`\epsilon = 2\cdot 10^{-5}` at :math:`\sigma_L = 0.01`). Start
  :math:`x \sim N(0, \beta_1^2 I)`; output the last iterate. NFE = L x steps_per_level. One
  chain in x: :meth:`ScoreALD.chain`.
* **DAPS** (Zhang, Chu, Berner, Meng, Anandkumar, Song, CVPR 2025, arXiv:2407.01521; as in the
  official code github.com/zhangbingliang2019/DAPS): annealing levels
  :math:`\sigma_1 > \dots > \sigma_N` (EDM polynomial spacing, rho = 7, 100 -> 0.1 in the
  official configs); at level i: :math:`\hat x_0` by ``ode_steps`` Euler steps of the
  probability-flow ODE :math:`dx/d\sigma = (x - D(x; \sigma))/\sigma` from :math:`\sigma_i` to
  ``ode_sigma_min`` (or Tweedie's :math:`D(x_{t_i}; \sigma_i)` with
  ``x0_estimator="tweedie"``); then ``langevin_steps`` Langevin steps from :math:`\hat x_0` on
  :math:`\log N(x_0; \hat x_0, r_i^2 I) + \log p(y \mid x_0)`, :math:`r_i` = ``r_scale``
  :math:`\sigma_i` (the official ``prior_solver: gaussian``), step
  :math:`h_i = \mathrm{lr}\cdot d_i/(r_i^{-2} + L_y)` decaying linearly by
  :math:`d_i = 1 + \frac{i}{N}(\mathrm{lr\_min\_ratio} - 1)` (official ``get_lr``; here the
  step is made relative to the stiffest curvature, :math:`L_y` the Lipschitz constant of
  :math:`\nabla\log p(y \mid \cdot)`); then :math:`x_{t_{i+1}} = x_0 + \sigma_{i+1}z`; the last
  level returns :math:`x_0`. NFE = (N - 1) ode_steps. The official code replaces the
  likelihood's noise by a tuned ``tau = 0.01`` in the data term; here ``tau = None`` (default)
  keeps the true likelihood. DAPS's state at a level is :math:`(x_0, \hat x_0)`, not x alone:
  no single chain in x.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .interface import ChainSpec, GaussianStep, Knob, PosteriorSampler, torch_map
from .likelihoods import Likelihood, LinearGaussian
from .tweedie import inflated, prior_extent, ve_score, ve_tweedie

__all__ = ["ScoreALD", "DAPS", "edm_sigmas"]

DTYPE = torch.float64


def edm_sigmas(sigma_max: float, sigma_min: float, n: int, rho: float = 7.0) -> np.ndarray:
    r""":math:`\sigma_i = (\sigma_{max}^{1/\rho} + \frac{i}{n-1}(\sigma_{min}^{1/\rho} -
    \sigma_{max}^{1/\rho}))^\rho`, i = 0..n-1 (Karras et al. 2022)."""
    if n == 1:
        return np.array([float(sigma_max)])
    i = np.arange(n) / (n - 1)
    return (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


class ScoreALD(PosteriorSampler):
    """Score-ALD (Jalal et al. 2021), module docstring."""

    name = "score-ald"
    family = "langevin"
    reference = "Jalal, Arvinte, Daras, Price, Dimakis, Tamir, NeurIPS 2021, arXiv:2108.01368"
    KNOBS = {"sigma_max": Knob(None, "optional-positive",
                               "largest level beta_1 (None: the prior's extent, NCSNv2's rule)"),
             "sigma_min": Knob(0.01, "positive", "smallest level beta_L (NCSN's 0.01)"),
             "steps_per_level": Knob(3, "int", "Langevin steps per level (3: 'a few', the paper)"),
             "step_ratio": Knob(0.2, "positive", "eta_l / beta_l^2 (0.2: NCSN's eps = 2e-5 at "
                                                 "sigma_L = 0.01)"),
             "gamma_scale": Knob(1.0, "nonnegative", "gamma_l = gamma_scale * beta_l "
                                                     "(1: 'often beta_l')")}

    def min_nfe(self):
        return self.knobs["steps_per_level"]

    def _levels(self, prior, nfe):
        L = max(1, nfe // self.knobs["steps_per_level"])
        smax = self.knobs["sigma_max"] or prior_extent(prior)
        smin = min(self.knobs["sigma_min"], smax)
        return smax * (smin / smax) ** (np.arange(L) / max(L - 1, 1))

    def _step(self, prior, lik, beta):
        eta = self.knobs["step_ratio"] * beta ** 2
        lk = inflated(lik, (self.knobs["gamma_scale"] * beta) ** 2)
        return (lambda x: x + eta * (ve_score(prior, x, beta) + lk.grad(x))), math.sqrt(2 * eta)

    def _sample(self, prior, lik, nfe, n, generator, device):
        betas = self._levels(prior, nfe)
        x = betas[0] * torch.randn(n, prior.dim, generator=generator, dtype=DTYPE, device=device)
        for beta in betas:
            f, c = self._step(prior, lik, float(beta))
            for _ in range(self.knobs["steps_per_level"]):
                x = f(x) + c * torch.randn(x.shape, generator=generator, dtype=DTYPE, device=device)
        return x, {"nfe": len(betas) * self.knobs["steps_per_level"],
                   "knobs": {"sigma_max": float(betas[0]), "levels": len(betas)},
                   "extra": {"jvp_calls": 0}}

    def chain(self, prior, lik, nfe):
        self.check_problem(prior, lik)
        betas = self._levels(prior, int(nfe))
        steps = []
        for beta in betas:
            f, c = self._step(prior, lik, float(beta))
            steps += [GaussianStep(torch_map(f, prior.device), c, f"ALD beta={beta:.4g}")
                      for _ in range(self.knobs["steps_per_level"])]
        return ChainSpec(prior.dim, float(betas[0]), steps,
                         [f"score-ald: {len(betas)} levels x {self.knobs['steps_per_level']} "
                          f"Langevin steps"])


class DAPS(PosteriorSampler):
    """DAPS (Zhang et al. 2025), module docstring."""

    name = "daps"
    family = "langevin"
    reference = ("Zhang, Chu, Berner, Meng, Anandkumar, Song, CVPR 2025, arXiv:2407.01521 "
                 "(official code github.com/zhangbingliang2019/DAPS)")
    KNOBS = {"sigma_max": Knob(100.0, "positive", "first annealing level (official: 100)"),
             "sigma_min": Knob(0.1, "positive", "last annealing level (official: 0.1)"),
             "rho": Knob(7.0, "positive", "EDM spacing exponent of the levels (official poly-7)"),
             "ode_steps": Knob(5, "int", "Euler steps of the PF-ODE per level (official: 5)"),
             "ode_sigma_min": Knob(0.01, "positive", "end of each PF-ODE (official: 0.01)"),
             "x0_estimator": Knob("ode", "choice", "ode (the paper) or tweedie (exact mean, "
                                                   "1 NFE per level)", ("ode", "tweedie")),
             "langevin_steps": Knob(100, "int", "Langevin steps per level (official pixel "
                                                "configs: 100)"),
             "lr": Knob(0.5, "positive", "Langevin step relative to 1/(r_i^-2 + L_y)"),
             "lr_min_ratio": Knob(0.01, "positive", "final / initial step (official 0.01)"),
             "r_scale": Knob(1.0, "positive", "r_i = r_scale sigma_i (official: r_i = sigma_i)"),
             "tau": Knob(None, "optional-positive",
                         "noise sd used in the data term (None: the true likelihood; the "
                         "official code uses a tuned 0.01)")}

    def _per_level(self):
        return 1 if self.knobs["x0_estimator"] == "tweedie" else self.knobs["ode_steps"]

    def min_nfe(self):
        return self._per_level()

    def _x0hat(self, prior, x, sigma):
        if self.knobs["x0_estimator"] == "tweedie":
            return ve_tweedie(prior, x, sigma)
        sig = edm_sigmas(sigma, min(self.knobs["ode_sigma_min"], sigma), self.knobs["ode_steps"] + 1,
                         self.knobs["rho"])
        for s0, s1 in zip(sig[:-1], sig[1:]):
            d = (x - ve_tweedie(prior, x, float(s0))) / s0
            x = x + (s1 - s0) * d
        return x

    def _lik(self, lik: Likelihood):
        if self.knobs["tau"] is None:
            return lik
        if not isinstance(lik, LinearGaussian):
            raise ValueError("daps: tau replaces the noise of a linear-Gaussian likelihood only")
        return LinearGaussian(lik.A, lik.y, self.knobs["tau"], device=lik.device)

    def _sample(self, prior, lik, nfe, n, generator, device):
        N = nfe // self._per_level() + 1
        sig = edm_sigmas(self.knobs["sigma_max"], self.knobs["sigma_min"], N, self.knobs["rho"])
        lk = self._lik(lik)
        L_y = 1.0 / lk.step_scale()
        x = sig[0] * torch.randn(n, prior.dim, generator=generator, dtype=DTYPE, device=device)
        x0 = x
        for i in range(N - 1):
            s = float(sig[i])
            x0hat = self._x0hat(prior, x, s)
            r2 = (self.knobs["r_scale"] * s) ** 2
            decay = 1 + i / N * (self.knobs["lr_min_ratio"] - 1)
            h = self.knobs["lr"] * decay / (1 / r2 + L_y)
            x0 = x0hat
            for _ in range(self.knobs["langevin_steps"]):
                drift = lk.grad(x0) + (x0hat - x0) / r2
                x0 = x0 + h * drift + math.sqrt(2 * h) * torch.randn(
                    x0.shape, generator=generator, dtype=DTYPE, device=device)
            if i < N - 2:
                x = x0 + float(sig[i + 1]) * torch.randn(x0.shape, generator=generator,
                                                         dtype=DTYPE, device=device)
        notes = [] if N >= 3 else ["budget below two levels: DAPS ran one level"]
        return x0, {"nfe": (N - 1) * self._per_level(), "knobs": {"levels": N - 1},
                    "notes": notes, "extra": {"jvp_calls": 0}}
