r"""Reading the exact rule of a user's step function (bring your own sampler, exactly).

A step function ``step(y, t, score, generator)`` (:class:`~theory.samplers.StepSampler`) that
is affine in the sample, in the values its score calls return and in its noise is a
multi-stage rule (:mod:`theory.stages`): each score call is a stage whose point is an affine
combination of the sample and the earlier calls' values. :func:`read_step_sampler` reads
those coefficients *by calling the step* (no knowledge of its formula):

1. **Linear response.** At every step t the step is run on a batch of rows (d = 1): one row
   per exogenous input (the sample, and the value returned by each score call, set to 1 on
   its own row and 0 elsewhere) plus verification rows with random inputs of sizes 0.01, 1
   and 100. The probe score returns these prescribed values and records where it was called
   (its points and step indices). A twin run with all inputs 0 and the same generator seed
   draws the same noise, so the difference of the two runs is the noise-free response, and
   each coefficient is read off exactly (to round-off).
2. **Verification.** The coefficients must reproduce the response on the verification rows
   (relative deviation below ``tol``); otherwise :class:`NotAffine` names the step, the
   quantity (a stage point or the output) and the deviation (a clip, a norm, a nonlinear
   function of the score...).
3. **Noise.** In the twin run the stage points and the output are pure noise; the first
   standard normal draws of the sample's shape are regenerated from a copy of the generator
   and the noise must be ``pre_c z_1`` on the sample before the stages and ``c z`` after
   them (fitted exactly, else refused).
4. **Rule.** One call per step at the step's own level on the sample itself gives an
   :class:`~theory.samplers.AffineRule` (a, b, c, pre_c) - the built-in engines, unchanged;
   anything else a :class:`~theory.stages.StageRule` (stage levels from the call's step index,
   fractional indices by :meth:`~theory.schedules.Schedule.alpha_bar_of_index`).
5. **End to end** (deterministic rules, ``verify=True``): the user's sampler and the read rule
   are run from the same start on the exact score of a 2-D product prior; they must agree
   (this catches a step with hidden state, or one that mixes coordinates: the probe assumes
   scalar coefficients acting on every coordinate alike).

:func:`theory.diffusers_adapter.read_scheduler` does the same for a ``diffusers`` scheduler
loop (whose steps carry history).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .checks import positive
from .priors import make_prior
from .samplers import AffineRule, AnalyticScore, StepSampler, run_sampler
from .stages import StageRule, Tableau

__all__ = ["NotAffine", "read_step_sampler", "check_response", "fit_noise", "SCALES"]

F64 = torch.float64
SCALES = (0.01, 1.0, 100.0)        # sizes of the random verification inputs
MAX_CALLS = 16


class NotAffine(ValueError):
    """The sampler is not affine in its inputs (where is said in the message)."""


def _verification_inputs(n_inputs, seed, per_scale=2):
    g = np.random.default_rng(seed)
    return np.concatenate([s * g.standard_normal((per_scale, n_inputs)) for s in SCALES])


def check_response(name, where, basis, actual, inputs, tol):
    """Verify that ``actual`` (values on the verification rows) equals ``inputs @ basis``
    (the linear response read on the basis rows); raise :class:`NotAffine` otherwise."""
    pred = inputs @ basis
    scale = np.abs(inputs) @ np.abs(basis) + 1e-300
    dev = float(np.max(np.abs(actual - pred) / scale))
    if not np.isfinite(dev) or dev > tol:
        hint = ("; a deviation this small is float32 round-off: the code computes in float32 "
                "(pass tol=1e-6 to accept its rounding)" if dev < 1e-5 else
                ", e.g. a clip, a norm or a nonlinear function of the sample or the score")
        raise NotAffine(f"{name} is not affine: at {where}, the response to random inputs "
                        f"differs from the affine prediction by {dev:.3g} (relative; inputs of "
                        f"size {', '.join(f'{s:g}' for s in SCALES)}){hint}")
    return dev


def fit_noise(name, where, residual, draws, tol, scale=1.0):
    """Coefficients ``g`` with ``residual = draws @ g`` (``draws``: (R, k) regenerated standard
    normal draws) to ``tol`` relative to ``scale`` (the size of the quantity the residual is
    left of), or ``ValueError``; zeros where the residual is round-off."""
    scale = max(float(scale), 1e-300)
    if float(np.max(np.abs(residual))) <= tol * scale:
        return np.zeros(draws.shape[1])
    g, *_ = np.linalg.lstsq(draws, residual, rcond=None)
    dev = float(np.max(np.abs(residual - draws @ g))) / scale
    if dev > tol:
        raise ValueError(f"{name}: at {where} the noise is not a multiple of the standard "
                         f"normal draws of the sample's shape from the generator (deviation "
                         f"{dev:.3g}); the step must draw its noise as torch.randn(y.shape, "
                         "generator=generator, dtype=y.dtype) and add it to the sample")
    g[np.abs(g) <= tol * scale] = 0.0
    return g


class _ProbeScore:
    """A score that returns prescribed values and records its calls."""

    def __init__(self, values):
        self.values, self.calls = values, []

    def __call__(self, x, u):
        k = len(self.calls)
        if k >= MAX_CALLS:
            raise ValueError(f"more than {MAX_CALLS} score calls in one step")
        if not torch.is_tensor(x) or x.shape != (self.values.shape[0], 1):
            raise ValueError("the step must call score(x, u) with x of the sample's shape")
        self.calls.append((float(u), x[:, 0].detach().cpu().numpy().astype(np.float64)))
        return torch.as_tensor(self.values[:, k:k + 1], dtype=F64)


def _run_step(sampler, t, y, values, seed):
    g = torch.Generator().manual_seed(seed)
    sc = _ProbeScore(values)
    out = sampler.step(torch.as_tensor(y[:, None], dtype=F64), t, sc, g)
    if not torch.is_tensor(out) or out.shape != (y.size, 1):
        raise ValueError(f"step of {sampler.name!r} must return a tensor of the sample's shape")
    return sc.calls, out[:, 0].detach().cpu().numpy().astype(np.float64)


def _draws(seed, rows, k=3):
    g = torch.Generator().manual_seed(seed)
    return np.stack([torch.randn((rows, 1), generator=g, dtype=F64)[:, 0].numpy()
                     for _ in range(k)], axis=1)


def _read_step(sampler, t, seed, tol):
    """(levels as step indices, P, Q, a, B, c, pre_c) of one step of ``sampler``."""
    n_in = 1 + MAX_CALLS
    ver = _verification_inputs(n_in, seed + 7 * t)
    E = np.concatenate([np.eye(n_in), ver])
    n_b = n_in
    calls_a, out_a = _run_step(sampler, t, E[:, 0], E[:, 1:], seed + t)
    Z = np.zeros_like(E)
    calls_b, out_b = _run_step(sampler, t, Z[:, 0], Z[:, 1:], seed + t)
    _, again = _run_step(sampler, t, Z[:, 0], Z[:, 1:], seed + t)
    if not np.array_equal(again, out_b):
        raise NotAffine(f"{sampler.name}: at step {t} the same inputs and generator seed give "
                        "different outputs: the step keeps state between calls (or draws noise "
                        "outside the generator), which the probe cannot read")
    if [u for u, _ in calls_a] != [u for u, _ in calls_b]:
        raise NotAffine(f"{sampler.name} is not affine: at step {t} its score calls depend on "
                        "the inputs")
    k = len(calls_a)
    where = f"step t = {t}"
    # noise-free response of each stage point and of the output
    P, Q = np.zeros((k, 1)), np.zeros((k, k))
    for i, ((u, xa), (_, xb)) in enumerate(zip(calls_a, calls_b)):
        resp = xa - xb
        check_response(sampler.name, f"{where} (the point of score call {i + 1})", resp[:n_b],
                       resp[n_b:], ver, tol)
        P[i, 0] = resp[0]
        Q[i, :i] = resp[1:1 + i]
    resp = out_a - out_b
    check_response(sampler.name, f"{where} (its output)", resp[:n_b], resp[n_b:], ver, tol)
    a, B = resp[0], resp[1:1 + k]
    # noise: pre-noise through the stage points, then noise after
    draws = _draws(seed + t, E.shape[0])
    pre = 0.0
    for i, (_, xb) in enumerate(calls_b):
        g = fit_noise(sampler.name, f"{where}, score call {i + 1}", xb, draws, tol,
                      1 + np.abs(xb).max())
        if np.any(g[1:] != 0) and np.max(np.abs(g[1:])) > tol * max(1.0, abs(g[0])):
            raise ValueError(f"{sampler.name}: at {where} noise enters score call {i + 1} other "
                             "than through the sample before the stages")
        if P[i, 0] != 0 and g[0] != 0:
            p_i = g[0] / P[i, 0]
            if pre and abs(p_i - pre) > tol * abs(pre):
                raise ValueError(f"{sampler.name}: at {where} the stage points see different "
                                 "noise")
            pre = p_i
    g = fit_noise(sampler.name, f"{where}, its output", out_b - a * pre * draws[:, 0], draws,
                  tol, 1 + np.abs(out_b).max())
    n_pre = 1 if pre else 0
    if np.any(np.abs(g[:n_pre]) > tol) or np.count_nonzero(np.abs(g) > tol) > 1:
        raise ValueError(f"{sampler.name}: at {where} the noise after the stages is not one "
                         "standard normal draw")
    c = float(np.abs(g).max()) if g.size else 0.0
    return [u for u, _ in calls_a], P, Q, float(a), B, c, abs(float(pre))


def read_step_sampler(sampler: StepSampler, *, verify: bool = True, seed: int = 0,
                      tol: float = 1e-9):
    r"""The exact rule of an affine step function (module docstring).

    Parameters
    ----------
    sampler : StepSampler
        Its ``step`` must be affine in (sample, score values, noise) with scalar coefficients,
        draw its noise with ``torch.randn(y.shape, generator=generator, dtype=y.dtype)`` and
        keep no state between calls.
    verify : bool
        Run the end-to-end check (deterministic rules).
    seed : int
        Seeds of the probe runs.
    tol : float
        Relative tolerance of the affine and noise checks.

    Returns
    -------
    AffineRule or StageRule
        With the sampler's schedule, target and init; :func:`theory.exact_distance` and the
        other exact engines accept it.

    Raises
    ------
    NotAffine
        Where the step is not affine (the message names the step and the quantity).
    """
    if not isinstance(sampler, StepSampler):
        raise ValueError("read_step_sampler needs a StepSampler")
    tol = positive("tol", tol)
    s = sampler.schedule
    steps = {t: _read_step(sampler, t, seed, tol) for t in sampler.steps}
    one_stage = all(len(u) == 1 and u[0] == t and abs(P[0, 0] - 1) <= 1e-12
                    for t, (u, P, *_r) in steps.items())
    if one_stage:
        T = s.T
        a, b, c, pc = (np.zeros(T + 1) for _ in range(4))
        for t, (_, _, _, at, B, ct, pt) in steps.items():
            a[t], b[t], c[t], pc[t] = at, B[0], ct, pt
        rule = AffineRule(sampler.name, a, b, c, s, pc, target=sampler.target,
                          init=sampler.init)
    else:
        tabs = [None] * (s.T + 1)
        for t, (us, P, Q, at, B, ct, pt) in steps.items():
            levels = [float(s.alpha_bar_of_index(u)) for u in us]
            tabs[t] = Tableau(levels, P, Q, [[at]], B[None, :], ct, pt)
        rule = StageRule(sampler.name, tuple(tabs), s, sampler.target, sampler.init,
                         info={"read_from": "step function"})
    if verify and rule.deterministic:
        _end_to_end(sampler, rule, seed)
    return rule


def _end_to_end(sampler, rule, seed, n=256):
    """Run both on the exact score of a 2-D bimodal prior from the same start (the user's
    sampler at d = 2, where the probe ran at d = 1)."""
    prior = make_prior("bimodal", 2)
    score = AnalyticScore(prior, sampler.schedule)
    g = torch.Generator().manual_seed(seed)
    y0 = score.marginal(sampler.T).sample(n, generator=g) if sampler.init == "qT" else \
        torch.randn(n, 2, generator=g, dtype=F64)
    mine = run_sampler(sampler, score, n, 2, y_T=y0, generator=torch.Generator().manual_seed(1))
    read = run_sampler(rule, score, n, 2, y_T=y0, generator=torch.Generator().manual_seed(1))
    dev = float((mine - read).abs().max() / (1 + mine.abs().max()))
    if not math.isfinite(dev) or dev > 1e-8:
        raise NotAffine(f"{sampler.name}: the read rule and the step function disagree on the "
                        f"exact score of a 2-D prior (relative deviation {dev:.3g}): the step "
                        "keeps state between calls or mixes coordinates, which the probe "
                        "(scalar coefficients, d = 1) cannot see")
