r"""One interface for the posterior samplers of THEORY.md section 7.

A sampler is configured by its knobs (each with a documented default) and run as

    result = method.sample(prior, lik, nfe, n, generator=g)

on a prior with an analytic score (:mod:`theory.priors`), a likelihood
(:mod:`theory.posterior.likelihoods`) and a budget of ``nfe`` prior-score evaluations per
output sample; it returns a :class:`SamplerResult`: the (n, d) samples, the NFE it spent per
output sample, the particle count, the knob values actually used (after any scaling to the
budget), and notes (e.g. "point estimate, not a posterior sample").

**NFE accounting** (THEORY.md section 7). NFE = prior-score (denoiser) evaluations per output
sample. A particle method with K particles spends K evaluations per step for K correlated
outputs, so its NFE per output is its number of steps; its outputs carry ``groups`` (the run
each came from) so that intervals resample whole runs. Jacobian-vector products of the score
(the analytic stand-in for a backward pass through a network) are not counted in NFE; they
are reported as ``extra["jvp_calls"]`` per output. A method whose default knobs exceed the
budget is run with them scaled to it, and its notes say so.

**Markov chains in x.** A sampler that is a single chain :math:`x_{k+1} = m_k(x_k) + c_k Z_k`
(or a Metropolis step) returns its steps from :meth:`PosteriorSampler.chain` as a
:class:`ChainSpec`: the initial law :math:`N(0, s^2 I)` and a list of :class:`GaussianStep`
/ :class:`MetropolisStep`, each map acting on float64 numpy points (n, d) -> (n, d). These
are the step types of the exact 1-D / 2-D grid engines (issue 10, ``chain_steps.py``; the two
dataclasses here have the same fields and are to be replaced by imports from that module
when it lands). :func:`run_chain` applies a spec by Monte Carlo, drawing its noise from a
torch generator in the sampler's own order (initial draw, then one (n, d) normal draw per
step with noise), so that the sampler and its chain give the same numbers for the same seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..checks import integer, number
from ..priors import Prior
from ..rng import check_device, resolve_generator
from .likelihoods import Likelihood

__all__ = ["SamplerResult", "PosteriorSampler", "GaussianStep", "MetropolisStep", "ChainSpec",
           "run_chain", "torch_map", "Knob"]

DTYPE = torch.float64


@dataclass
class SamplerResult:
    """What a posterior sampler returns.

    ``samples`` (n, d) float64; ``nfe`` prior-score evaluations per output sample (mean over
    outputs); ``particles`` per run (1 for single chains); ``knobs`` the values used;
    ``point_estimate`` True for optimisers whose output law is not meant to be the posterior;
    ``groups`` (n,) run index of each output (correlated outputs of a particle method) or
    None; ``notes``; ``extra`` (jvp_calls per output, acceptance rates, ESS, ...).
    """

    method: str
    samples: torch.Tensor
    nfe: float
    particles: int
    knobs: dict
    point_estimate: bool = False
    groups: Optional[torch.Tensor] = None
    notes: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """Everything but the samples, JSON-able."""
        return {"method": self.method, "nfe": float(self.nfe), "particles": int(self.particles),
                "knobs": self.knobs, "point_estimate": self.point_estimate,
                "notes": list(self.notes), "n": int(self.samples.shape[0]),
                "correlated_groups": None if self.groups is None
                else int(torch.unique(self.groups).numel()),
                "extra": {k: (float(v) if isinstance(v, (int, float, np.floating)) else v)
                          for k, v in self.extra.items()}}


@dataclass(frozen=True)
class Knob:
    """A tuning knob: default, kind (``positive``, ``nonnegative``, ``unit`` (in [0, 1]),
    ``int``, ``choice``, ``number``, ``optional-positive``), the allowed choices, and the
    documentation (what it is and where the default comes from)."""

    default: object
    kind: str
    doc: str
    choices: tuple = ()

    def check(self, name, v):
        if self.kind == "positive":
            return number(name, v, positive=True)
        if self.kind == "nonnegative":
            return number(name, v, lo=0.0)
        if self.kind == "unit":
            return number(name, v, lo=0.0, hi=1.0)
        if self.kind == "int":
            return integer(name, v, lo=1)
        if self.kind == "number":
            return number(name, v)
        if self.kind == "optional-positive":
            return None if v is None else number(name, v, positive=True)
        if self.kind == "choice":
            if v not in self.choices:
                raise ValueError(f"unknown {name} {v!r}; choose from {', '.join(map(str, self.choices))}")
            return v
        raise ValueError(f"unknown knob kind {self.kind!r}")


class PosteriorSampler:
    """Base class: knobs, argument checks, generator, result. Subclasses set ``name``,
    ``family``, ``reference`` (paper and arXiv id), ``KNOBS`` ({name: Knob}) and implement
    ``_sample(prior, lik, nfe, n, generator, device) -> (samples, info)`` where ``info`` is a
    dict with any of ``nfe``, ``particles``, ``groups``, ``notes``, ``extra``, ``knobs``;
    single chains also implement ``chain(prior, lik, nfe) -> ChainSpec``."""

    name = "sampler"
    family = ""
    reference = ""
    KNOBS: dict = {}
    point_estimate = False
    linear_gaussian_only = False

    def __init__(self, **knobs):
        unknown = sorted(set(knobs) - set(self.KNOBS))
        if unknown:
            raise ValueError(f"{self.name} has no knob {unknown[0]!r}; knobs: "
                             f"{', '.join(self.KNOBS) or 'none'}")
        self.knobs = {k: kb.check(k, knobs.get(k, kb.default)) for k, kb in self.KNOBS.items()}

    @classmethod
    def knob_docs(cls) -> dict:
        return {k: {"default": kb.default, "doc": kb.doc} for k, kb in cls.KNOBS.items()}

    def min_nfe(self) -> int:
        """The smallest budget the method can run with."""
        return 2

    def check_problem(self, prior: Prior, lik: Likelihood):
        if prior.dim != lik.dim:
            raise ValueError(f"prior dimension {prior.dim} differs from the likelihood's {lik.dim}")
        if self.linear_gaussian_only and not lik.linear_gaussian:
            raise ValueError(f"{self.name} needs a linear-Gaussian likelihood (y = Ax + noise), "
                             f"not {lik.name!r}")

    def sample(self, prior: Prior, lik: Likelihood, nfe: int, n: int, *,
               generator: Optional[torch.Generator] = None, seed: Optional[int] = None,
               device=None) -> SamplerResult:
        """``n`` outputs at a budget of ``nfe`` prior-score evaluations per output."""
        self.check_problem(prior, lik)
        nfe = integer("nfe", nfe, lo=self.min_nfe())
        n = integer("n", n, lo=1)
        dev = check_device(prior, device)
        g, _, _ = resolve_generator(seed, generator, dev)
        x, info = self._sample(prior, lik, nfe, n, g, dev)
        return SamplerResult(self.name, x, float(info.get("nfe", nfe)),
                             int(info.get("particles", 1)), {**self.knobs, **info.get("knobs", {})},
                             self.point_estimate, info.get("groups"), list(info.get("notes", [])),
                             dict(info.get("extra", {})))

    def _sample(self, prior, lik, nfe, n, generator, device):
        raise NotImplementedError

    def chain(self, prior: Prior, lik: Likelihood, nfe: int) -> "ChainSpec":
        raise ValueError(f"{self.name} is not a single Markov chain in x (no chain steps)")

    @property
    def is_chain(self) -> bool:
        return type(self).chain is not PosteriorSampler.chain


# --------------------------------------------------------------------------------------
# Chain steps (the step types of the exact grid engines, issue 10)
# --------------------------------------------------------------------------------------

@dataclass
class GaussianStep:
    r""":math:`x' = \mathrm{map}(x) + \mathrm{noise\_std}\cdot Z`, ``map`` on float64 numpy
    points (n, d) -> (n, d), ``noise_std`` a float or a (d,) array (0: a deterministic map)."""

    map: Callable[[np.ndarray], np.ndarray]
    noise_std: Union[float, np.ndarray]
    name: str = ""


@dataclass
class MetropolisStep:
    r"""Propose :math:`x^* = \mathrm{proposal\_map}(x) + \mathrm{noise\_std}\cdot Z`, accept
    with probability :math:`\min(1, \pi(x^*)q(x \mid x^*)/(\pi(x)q(x^* \mid x)))`,
    ``log_target`` on numpy points (n, d) -> (n,)."""

    proposal_map: Callable[[np.ndarray], np.ndarray]
    noise_std: Union[float, np.ndarray]
    log_target: Callable[[np.ndarray], np.ndarray]
    name: str = ""


@dataclass
class ChainSpec:
    """A chain: :math:`x_0 \\sim N(0, \\mathrm{init\\_std}^2 I_d)`, then ``steps`` in order; the
    last state is the output."""

    dim: int
    init_std: float
    steps: list
    notes: list = field(default_factory=list)


def torch_map(fn: Callable[[torch.Tensor], torch.Tensor], device=None):
    """Wrap a torch map of float64 (n, d) rows as a numpy map (the chain-step convention)."""
    def f(x: np.ndarray) -> np.ndarray:
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=DTYPE, device=device)
        with torch.no_grad():
            return fn(xt).detach().cpu().numpy().astype(np.float64)
    return f


def _gauss_logq(x_to, mean, std):
    return -0.5 * (((x_to - mean) / std) ** 2).sum(1)


def run_chain(spec: ChainSpec, n: int, generator: Optional[torch.Generator] = None) -> np.ndarray:
    """Apply a :class:`ChainSpec` by Monte Carlo to ``n`` chains, noise from ``generator``
    (CPU torch): the initial (n, d) draw, then per step with noise one (n, d) normal draw
    (Metropolis steps: then one (n,) uniform draw). Returns the (n, d) output."""
    n, d = integer("n", n, lo=1), spec.dim
    x = (spec.init_std * torch.randn(n, d, generator=generator, dtype=DTYPE)).numpy()
    for st in spec.steps:
        std = np.asarray(st.noise_std, dtype=np.float64)
        if isinstance(st, GaussianStep):
            mean = st.map(x)
            if np.any(std != 0):
                mean = mean + std * torch.randn(n, d, generator=generator, dtype=DTYPE).numpy()
            x = mean
        elif isinstance(st, MetropolisStep):
            z = torch.randn(n, d, generator=generator, dtype=DTYPE).numpy()
            prop = st.proposal_map(x) + std * z
            log_a = (st.log_target(prop) - st.log_target(x)
                     + _gauss_logq(x, st.proposal_map(prop), std) - _gauss_logq(prop, st.proposal_map(x), std))
            u = torch.rand(n, generator=generator, dtype=DTYPE).numpy()
            x = np.where((np.log(u) < log_a)[:, None], prop, x)
        else:
            raise ValueError(f"unknown step type {type(st).__name__}")
    return x


def budget_split(nfe: int, per_unit: int, lo: int = 1) -> int:
    """How many units of ``per_unit`` evaluations fit in ``nfe`` (at least ``lo``)."""
    return max(lo, int(nfe) // int(per_unit))


def groups_for(n_runs: int, k: int, n: int, device) -> torch.Tensor:
    """Run index of each of the first ``n`` outputs of ``n_runs`` runs of ``k`` particles."""
    return torch.arange(n_runs, device=device).repeat_interleave(k)[:n]


def gaussian_chain_law(spec: ChainSpec, check_points: int = 4, rtol: float = 1e-8):
    r"""The exact output law of a chain whose maps are all affine (a Gaussian prior with a
    linear-Gaussian likelihood makes every guided step affine): each map is read off as
    :math:`m(x) = Mx + c` from its values at 0 and the unit vectors, checked at
    ``check_points`` further points (``ValueError`` if a map is not affine to ``rtol``), and
    the Gaussian law is propagated exactly, :math:`\mu' = M\mu + c`,
    :math:`\Sigma' = M\Sigma M^\top + \mathrm{diag}(\mathrm{noise\_std}^2)`.
    Returns ``(mean (d,), cov (d, d))``."""
    d = spec.dim
    mean = np.zeros(d)
    cov = spec.init_std ** 2 * np.eye(d)
    rng = np.random.default_rng(0)
    for st in spec.steps:
        if not isinstance(st, GaussianStep):
            raise ValueError("gaussian_chain_law needs Gaussian steps only")
        pts = np.vstack([np.zeros((1, d)), np.eye(d), rng.standard_normal((check_points, d))])
        vals = st.map(pts)
        c = vals[0]
        M = (vals[1:d + 1] - c).T
        pred = pts[d + 1:] @ M.T + c
        scale = np.abs(vals).max() + 1.0
        if np.abs(pred - vals[d + 1:]).max() > rtol * scale:
            raise ValueError(f"step {st.name!r} is not affine: no Gaussian law")
        std = np.broadcast_to(np.asarray(st.noise_std, dtype=np.float64), (d,))
        mean = M @ mean + c
        cov = M @ cov @ M.T + np.diag(std ** 2)
    return mean, 0.5 * (cov + cov.T)
