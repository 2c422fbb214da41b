r"""The posterior-sampling problem suite: named, seeded problems whose posterior is known
exactly (:mod:`theory.posterior.metrics`).

A problem is ``FAMILY:SEED`` (the family alone means seed 0). The seed draws, from one CPU
torch generator in the order stated per family, the unknown :math:`x^\star` from the prior
and the observation (and, where the family has one, the random operator). Test problems use
seeds 0, 1, ...; the validation problems on which knobs are tuned use seeds from
``VALIDATION_SEED`` = 1000 on, so a tuning problem is never a test problem.

Families:

* ``bimodal-1d-gaussian``: prior ``bimodal`` (:math:`\tfrac12N(-2, 0.25^2) + \tfrac12N(2, 0.25^2)`),
  :math:`y = x + \sigma\varepsilon`, sigma = 1 (weak: both modes keep posterior mass).
  Draws: :math:`x^\star`, then :math:`\varepsilon`.
* ``bimodal-1d-phase``: :math:`y = |x| + \sigma\varepsilon`, sigma = 0.5 (a symmetric
  two-mode posterior). Draws as above.
* ``bimodal-1d-logistic``: 1-bit, :math:`P(y = +1 \mid x) = \mathrm{sigmoid}(x/\lambda)`,
  lambda = 1. Draws: :math:`x^\star`, then a uniform.
* ``random2d-cond3``, ``random2d-cond30``: prior ``bimodal`` in d = 2 (four modes
  :math:`(\pm2, \pm2)`), A a 2 x 2 random operator with singular values log-spaced from 1 to
  1/cond (:func:`theory.posterior.likelihoods.make_operator`), sigma = 0.5. Draws: A, then
  :math:`x^\star`, then :math:`\varepsilon`.
* ``mcgdiff-dD-dyM`` (D in 8, 80, 800; M in 1, 2, 4): the Gaussian-mixture benchmark of
  Cardoso et al. (MCGdiff, arXiv:2308.07983; the recipe of its official code
  ``scripts/viz_gaussian.py``): 25 components :math:`N(\mu_{ij}, I_D)` with means
  :math:`(-8i, -8j, -8i, -8j, \dots)`, i, j in -2..2, weights :math:`\propto g_k^2`,
  :math:`g \sim N(0, I_{25})`; A = :math:`U\,\mathrm{diag}(s)V^\top_{1:M}` from the SVD of an
  M x D Gaussian matrix with the singular values replaced by sorted U(0, 1) draws;
  :math:`\sigma = u\max_i s_i`, u ~ U(0, 1); :math:`y = Ax^\star + \sigma\varepsilon`. Draws:
  g, the Gaussian matrix, s, :math:`x^\star`, u, :math:`\varepsilon`.
* ``denoise-100``: prior ``bimodal`` in d = 100, A = I, sigma = 1.
* ``inpaint-100``: prior ``bimodal`` in d = 100, A keeps the first 50 coordinates,
  sigma = 0.1 (the other 50 keep their bimodal prior).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..checks import integer
from ..priors import IsotropicMixture, Prior, make_prior
from .likelihoods import (Likelihood, LinearGaussian, LogisticQuantisation, PhaseRetrieval,
                          make_operator)

__all__ = ["Problem", "FAMILIES", "make_problem", "problem_name", "VALIDATION_SEED",
           "family_of", "test_problems", "validation_problem", "mcgdiff_prior"]

DTYPE = torch.float64
VALIDATION_SEED = 1000


@dataclass
class Problem:
    """One problem: prior, likelihood (with its observation), the unknown x*, and its
    configuration."""

    name: str
    family: str
    seed: int
    prior: Prior
    lik: Likelihood
    x_true: torch.Tensor
    params: dict = field(default_factory=dict)

    def title(self, seed: bool = True) -> str:
        """A reader's name for the problem, from its definition: prior, dimension, what is
        observed and how noisily, and (``seed``) the seed (``bimodal d = 1, y = x + σε,
        σ = 1, seed 0``); the figures' panel titles."""
        p, d, m = self.params, self.prior.dim, int(self.lik.A.shape[0])
        kind = self.family.rsplit("-", 1)[-1]
        if self.family.startswith("bimodal-1d-"):
            head = "bimodal d = 1, " + {
                "gaussian": f"y = x + σε, σ = {p.get('sigma', 0):g}",
                "phase": f"phase y = |x| + σε, σ = {p.get('sigma', 0):g}",
                "logistic": f"1-bit logistic, λ = {p.get('lambda', 0):g}"}[kind]
        elif self.family.startswith("random2d"):
            head = f"bimodal d = 2, random A (cond {p['cond']:g}), σ = {p['sigma']:g}"
        elif self.family.startswith("mcgdiff"):
            head = (f"25-mode mixture d = {d}, {m} observation{'s' if m > 1 else ''}, "
                    f"σ = {p['sigma']:.2g}")
        elif self.family == "denoise-100":
            head = f"bimodal d = {d}, denoising y = x + σε, σ = {p['sigma']:g}"
        elif self.family == "inpaint-100":
            head = f"bimodal d = {d}, {m} of {d} coordinates observed, σ = {p['sigma']:g}"
        else:                                           # a family added without a title
            head = self.family
        return f"{head}, seed {self.seed}" if seed else head

    def describe(self) -> dict:
        return {"problem": self.name, "family": self.family, "seed": self.seed,
                "d": self.prior.dim, "m": int(self.lik.A.shape[0]), "likelihood": self.lik.name,
                **self.params}


def _bimodal_1d(kind):
    def build(g):
        prior = make_prior("bimodal", 1)
        x = prior.sample(1, generator=g)[0]
        A = torch.ones(1, 1, dtype=DTYPE)
        if kind == "gaussian":
            y = x + 1.0 * torch.randn(1, generator=g, dtype=DTYPE)
            return prior, LinearGaussian(A, y, 1.0), x, {"sigma": 1.0}
        if kind == "phase":
            y = x.abs() + 0.5 * torch.randn(1, generator=g, dtype=DTYPE)
            return prior, PhaseRetrieval(A, y, 0.5), x, {"sigma": 0.5}
        u = torch.rand(1, generator=g, dtype=DTYPE)
        y = torch.where(u < torch.sigmoid(x / 1.0), 1.0, -1.0)
        return prior, LogisticQuantisation(A, y, 1.0), x, {"lambda": 1.0}
    return build


def _random2d(cond):
    def build(g):
        prior = make_prior("bimodal", 2)
        A = make_operator("random", 2, cond=cond, generator=g)
        x = prior.sample(1, generator=g)[0]
        y = A @ x + 0.5 * torch.randn(2, generator=g, dtype=DTYPE)
        return prior, LinearGaussian(A, y, 0.5), x, {"cond": cond, "sigma": 0.5}
    return build


def mcgdiff_prior(d: int, g: torch.Generator) -> IsotropicMixture:
    """The 25-component prior of the MCGdiff benchmark in dimension d (even), weights from
    ``g`` (module docstring)."""
    if d % 2:
        raise ValueError(f"the MCGdiff prior needs an even dimension, got {d}")
    means = torch.tensor([[-8.0 * i, -8.0 * j] * (d // 2) for i in range(-2, 3)
                          for j in range(-2, 3)], dtype=DTYPE)
    w = torch.randn(25, generator=g, dtype=DTYPE) ** 2
    return IsotropicMixture(w / w.sum(), means, torch.ones(25, dtype=DTYPE))


def _mcgdiff(d, dy):
    def build(g):
        prior = mcgdiff_prior(d, g)
        G = torch.randn(dy, d, generator=g, dtype=DTYPE)
        U, _, Vh = torch.linalg.svd(G, full_matrices=False)
        s = torch.sort(torch.rand(dy, generator=g, dtype=DTYPE), descending=True).values
        A = (U * s) @ Vh
        x = prior.sample(1, generator=g)[0]
        sigma = float(torch.rand(1, generator=g, dtype=DTYPE)) * float(s.max())
        y = A @ x + sigma * torch.randn(dy, generator=g, dtype=DTYPE)
        return prior, LinearGaussian(A, y, sigma), x, {"d": d, "dy": dy, "sigma": sigma,
                                                       "singular_values": s.tolist()}
    return build


def _product_100(kind):
    def build(g):
        prior = make_prior("bimodal", 100)
        x = prior.sample(1, generator=g)[0]
        if kind == "denoise":
            A, sigma = make_operator("identity", 100), 1.0
        else:
            A, sigma = make_operator("mask", 100, keep_fraction=0.5), 0.1
        y = A @ x + sigma * torch.randn(A.shape[0], generator=g, dtype=DTYPE)
        return prior, LinearGaussian(A, y, sigma), x, {"sigma": sigma}
    return build


FAMILIES = {
    "bimodal-1d-gaussian": _bimodal_1d("gaussian"),
    "bimodal-1d-phase": _bimodal_1d("phase"),
    "bimodal-1d-logistic": _bimodal_1d("logistic"),
    "random2d-cond3": _random2d(3.0),
    "random2d-cond30": _random2d(30.0),
    **{f"mcgdiff-d{d}-dy{dy}": _mcgdiff(d, dy) for d in (8, 80, 800) for dy in (1, 2, 4)},
    "denoise-100": _product_100("denoise"),
    "inpaint-100": _product_100("inpaint"),
}


def problem_name(family: str, seed: int) -> str:
    return f"{family}:{int(seed)}"


def family_of(name: str) -> tuple:
    """``(family, seed)`` of ``FAMILY`` or ``FAMILY:SEED``."""
    fam, _, seed = str(name).partition(":")
    if fam not in FAMILIES:
        raise ValueError(f"unknown problem family {fam!r}; choose from {', '.join(FAMILIES)}")
    return fam, (integer("problem seed", seed, lo=0) if seed else 0)


def make_problem(name: str) -> Problem:
    """Build ``FAMILY[:SEED]`` (module docstring)."""
    fam, seed = family_of(name)
    g = torch.Generator().manual_seed(seed)
    prior, lik, x, params = FAMILIES[fam](g)
    return Problem(problem_name(fam, seed), fam, seed, prior, lik, x, params)


def test_problems(family: str, k: int = 1) -> list:
    """The first ``k`` test problems of a family (seeds 0..k-1)."""
    return [problem_name(family, s) for s in range(int(k))]


def validation_problem(family: str, i: int = 0) -> str:
    """The i-th validation problem of a family (seed VALIDATION_SEED + i)."""
    return problem_name(family, VALIDATION_SEED + int(i))
