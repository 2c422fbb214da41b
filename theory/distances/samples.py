r"""Sample-based distances (the general fallback of THEORY.md section 5), on POT.

For samples :math:`x_1..x_n \sim p` (a sampler's outputs) and :math:`y_1..y_m \sim q` (the
target), each function returns a :class:`~theory.distances.estimate.DistanceEstimate` whose value is
the statistic between the two empirical measures, with

* its **noise floor**: the same statistic between two *independent sample sets of the
  target*, of the same sizes (``n`` and ``m``), with its own bootstrap interval, in
  ``details["floor"]``;
* a **value**, the statistic corrected for its bias by the bootstrap,
  :math:`v = \max(0, 2\hat s - \mathrm{median}(s^*))` (:math:`\hat s` the statistic,
  :math:`s^*` its bootstrap replicates), and the raw statistic :math:`\hat s` beside it in
  ``details["statistic"]``;
* an **interval** ``[lower, upper]``: the basic bootstrap interval
  :math:`[2\hat s - s^*_{(0.975)}, 2\hat s - s^*_{(0.025)}]` (``n_boot`` resamples of x and
  of y, with replacement, independently; in ``details["bootstrap_interval"]``; it contains
  :math:`v` by construction) widened on both sides by the upper end ``f`` of the floor's
  (percentile) bootstrap interval, ``[max(lo - f, 0), hi + f]``. The bootstrap alone
  measures the statistic's spread and corrects its bias once, but the bias is what
  dominates for distances between empirical measures: :math:`W(\hat p_n, \hat q_m)`
  overestimates :math:`W(p, q)` by up to :math:`W(\hat p_n, p) + W(\hat q_m, q)` (triangle
  inequality), a quantity of the size of the floor (for the empirical W2 of a bimodal law
  at n = 2000, the bias is 20 times the distance). Measured coverage of the exact value on
  exact cases (Gaussian and bimodal output laws, 50 seeded repetitions each): see
  ``tests/test_sample_distances.py``;
* ``details["below_floor"]``: True when the interval's basic-bootstrap lower end reaches down
  to the floor's upper end (the value cannot be told apart from sampling noise; the
  interval then starts at 0).

Statistics (cost :math:`c(x, y) = |x - y|^2` throughout):

* ``w2``: exact :math:`W_2 = (\min_\gamma \langle\gamma, C\rangle)^{1/2}` of the two empirical
  measures (uniform weights) by the network simplex, :func:`ot.emd2`, in float64 (POT casts
  its result to the input dtype). ``emd2`` only *warns* when it stops at ``numItermax``, and
  then returns a wrong cost; here the cap is raised (default 1e8) and hitting it raises
  :class:`OTNotConverged` (the solver's result code is checked, and its warning is turned
  into an error). In 1-D the same optimum is computed exactly by sorting,
  :func:`ot.emd2_1d` (the method name says which solver ran). The empirical
  :math:`W_2^2` is biased upward by about :math:`n^{-2/d}` (THEORY.md section 5): compare a
  value with its floor.
* ``sliced_w2``: :math:`SW_2 = \big(\tfrac1P\sum_{j=1}^P W_2^2(\theta_j\#\hat p, \theta_j\#\hat q)
  \big)^{1/2}` with :math:`\theta_j` uniform on the unit sphere :math:`S^{d-1}`
  (:func:`ot.sliced_wasserstein_distance`, ``p = 2``; directions are normalised Gaussians,
  with NO :math:`\sqrt d` factor, so :math:`SW_2 \le W_2` and in d dimensions
  :math:`SW_2^2 = W_2^2/d` for a translation). In 1-D the directions are :math:`\pm 1` and
  :math:`SW_2 = W_2` exactly. The P directions are drawn once from the seed (value and
  floor use the same ones); each bootstrap replicate resamples the directions as well as
  the points, so the interval covers the Monte Carlo error over directions too. Bias of
  :math:`SW_2^2` about 1/n in any d.
* ``sinkhorn``: the debiased Sinkhorn divergence (Feydy et al. 2019)
  :math:`S_\varepsilon(\alpha,\beta) = \mathrm{OT}_\varepsilon(\alpha,\beta)
  - \tfrac12\mathrm{OT}_\varepsilon(\alpha,\alpha) - \tfrac12\mathrm{OT}_\varepsilon(\beta,\beta)`,
  :math:`\mathrm{OT}_\varepsilon(\alpha,\beta) = \min_\gamma \langle\gamma, C\rangle
  + \varepsilon\,\mathrm{KL}(\gamma\,\|\,\alpha\otimes\beta)`. The cross term is solved by
  POT's log-domain Sinkhorn (:func:`ot.bregman.sinkhorn_log`, torch backend), the two
  symmetric terms by the averaged symmetric iteration of Feydy et al. (POT's alternating
  iteration oscillates on them); all three are evaluated by the dual objective. :math:`S_\varepsilon \ge 0`, it is in the units of the cost
  (squared distance), tends to :math:`W_2^2` as :math:`\varepsilon \to 0` and to an MMD as
  :math:`\varepsilon \to \infty`. ``eps`` is absolute (units of :math:`|x-y|^2`). Warning:
  with well separated clusters of unequal mass the iteration count grows like
  :math:`e^{\mathrm{gap}^2/\varepsilon}`; non-convergence raises :class:`OTNotConverged`.

:func:`sweep_T` runs a sampler over several T with common random numbers (see there).

References:
    Flamary et al., "POT: Python Optimal Transport", JMLR 22(78), 2021.
    Feydy, Sejourne, Vialard, Amari, Trouve, Peyre, "Interpolating between optimal
    transport and MMD using Sinkhorn divergences", AISTATS 2019, arXiv:1810.08278.
    Bonneel, Rabin, Peyre, Pfister, "Sliced and Radon Wasserstein barycenters of measures",
    JMIV 2015.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Sequence

import numpy as np
import ot
import torch

from ..priors import Prior
from ..samplers import AffineRule, AnalyticScore, StepSampler, run_sampler, sampler_rule
from ..schedules import make_schedule
from ..stages import StageRule
from .estimate import DistanceEstimate

__all__ = ["OTNotConverged", "emd_w2", "w2_distance", "sliced_w2_distance",
           "sinkhorn_divergence", "sample_distance", "SAMPLE_METRICS", "sweep_T",
           "sampler_distance",
           "DEFAULT_NUM_ITERMAX"]

DEFAULT_NUM_ITERMAX = 100_000_000
SAMPLE_METRICS = ("w2", "sliced_w2", "sinkhorn")


class OTNotConverged(RuntimeError):
    """An OT solver stopped before optimality (its value would be wrong)."""


# --------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------

def _as_points(x, name) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must have shape (n, d) with n >= 2, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(x)


def _check_pair(x, y):
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples must share the dimension: {x.shape[1]} vs {y.shape[1]}")


def _seed_streams(seed):
    """Independent numpy streams for (bootstrap, projections, floor draws) from one seed."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 63))
    if isinstance(seed, bool) or not float(seed).is_integer():
        raise ValueError(f"seed must be an integer, got {seed!r}")
    seed = int(seed)
    ss = np.random.SeedSequence(seed).spawn(3)
    return seed, [np.random.default_rng(s) for s in ss]


def _check_boot(n_boot, level):
    if isinstance(n_boot, bool) or not float(n_boot).is_integer() or int(n_boot) < 10:
        raise ValueError(f"n_boot must be an integer >= 10, got {n_boot}")
    if not (0 < level < 1):
        raise ValueError(f"level must lie in (0, 1), got {level}")
    return int(n_boot)


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------

def emd_w2(x, y, *, num_itermax: int = DEFAULT_NUM_ITERMAX) -> float:
    r"""Exact :math:`W_2` between the empirical measures of ``x`` (n, d) and ``y`` (m, d).

    ``ot.emd2`` on the float64 squared-Euclidean cost matrix (``ot.emd2_1d`` by sorting in
    1-D). Raises :class:`OTNotConverged` if the network simplex hits ``num_itermax``.
    """
    x, y = _as_points(x, "x"), _as_points(y, "y")
    _check_pair(x, y)
    if x.shape[1] == 1:
        return math.sqrt(max(float(ot.emd2_1d(x[:, 0], y[:, 0], metric="sqeuclidean")), 0.0))
    M = ot.dist(x, y, metric="sqeuclidean")
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*numItermax reached.*")
        try:
            cost, log = ot.emd2(a, b, M, numItermax=int(num_itermax), log=True)
        except UserWarning as exc:
            raise OTNotConverged(f"ot.emd2 stopped at numItermax={num_itermax} before "
                                 f"optimality ({exc}); its cost would be wrong: raise "
                                 f"num_itermax") from None
    if int(log["result_code"]) != 1:
        raise OTNotConverged(f"ot.emd2 did not reach optimality (result code "
                             f"{log['result_code']}: {log['warning']})")
    return math.sqrt(max(float(cost), 0.0))


def _w2_stat(num_itermax):
    def stat(x, y):
        return emd_w2(x, y, num_itermax=num_itermax)
    return stat


def _sliced_equal_size(x, y, proj, p):
    """Sliced W_p between two uniform empirical measures of the same size: on each direction
    the optimal coupling matches the sorted projections (what POT computes through quantile
    functions, five times faster)."""
    xs = np.sort(x @ proj, axis=0)
    ys = np.sort(y @ proj, axis=0)
    return float(np.mean(np.abs(xs - ys) ** p) ** (1.0 / p))


def _sliced_stat(projections, p):
    def stat(x, y, rng=None):
        proj = projections
        if rng is not None:                  # bootstrap: resample the directions too
            proj = projections[:, rng.integers(0, proj.shape[1], proj.shape[1])]
        if x.shape[0] == y.shape[0]:
            return _sliced_equal_size(x, y, proj, p)
        return float(ot.sliced_wasserstein_distance(x, y, projections=proj, p=p))
    stat.resamples_directions = True
    return stat


def _ot_eps(x, y, eps, max_iter, stop_thr):
    r"""Entropic OT :math:`\mathrm{OT}_\varepsilon` between the uniform empirical measures of
    ``x`` and ``y`` by POT's log-domain Sinkhorn, evaluated by the dual objective
    :math:`\langle a,f\rangle + \langle b,g\rangle - \varepsilon(\sum_{ij}\gamma_{ij} - 1)`
    at the returned potentials (``f = eps (log u - log a)``, ``g = eps (log v - log b)``)."""
    n, m = x.shape[0], y.shape[0]
    M = ot.dist(x, y, metric="sqeuclidean")
    a = torch.full((n,), 1.0 / n, dtype=torch.float64, device=x.device)
    b = torch.full((m,), 1.0 / m, dtype=torch.float64, device=x.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Sinkhorn did not converge.*")
        try:
            _, log = ot.bregman.sinkhorn_log(a, b, M, eps, numItermax=int(max_iter),
                                             stopThr=stop_thr, log=True)
        except UserWarning:
            raise OTNotConverged(f"Sinkhorn (eps={eps}) did not reach the marginal tolerance "
                                 f"{stop_thr} in {max_iter} iterations: raise eps or "
                                 f"max_iter") from None
    lu, lv = log["log_u"], log["log_v"]
    mass = torch.exp(lu[:, None] + lv[None, :] - M / eps).sum()
    f, g = eps * (lu + math.log(n)), eps * (lv + math.log(m))
    return float(f.mean() + g.mean() - eps * (mass - 1.0))


def _ot_eps_self(x, eps, max_iter, stop_thr):
    r""":math:`\mathrm{OT}_\varepsilon(\alpha, \alpha)` by the symmetric Sinkhorn iteration
    with averaging, :math:`f \leftarrow \tfrac12\big(f - \varepsilon\log\sum_j a_j
    e^{(f_j - C_{ij})/\varepsilon}\big)` (Feydy et al. 2019, section 3.1; POT's alternating
    iteration oscillates on symmetric problems and converges slowly). Stops when the L2
    norm of the marginal violation of :math:`\gamma_{ij} = a_i a_j e^{(f_i + f_j - C_{ij})/
    \varepsilon}` is below ``stop_thr``; value :math:`2\langle a, f\rangle -
    \varepsilon(\sum\gamma - 1)` (dual objective)."""
    n = x.shape[0]
    C = ot.dist(x, x, metric="sqeuclidean")
    la = -math.log(n)
    f = torch.zeros(n, dtype=torch.float64, device=x.device)
    for _ in range(int(max_iter)):
        logrow = torch.logsumexp(la + (f[None, :] - C) / eps, dim=1)     # sum_j a_j e^...
        marg = torch.exp(la + f / eps + logrow)                          # row sums of gamma
        if float(torch.linalg.vector_norm(marg - 1.0 / n)) < stop_thr:
            mass = marg.sum()
            return float(2 * f.mean() - eps * (mass - 1.0))
        f = 0.5 * (f - eps * logrow)
    raise OTNotConverged(f"symmetric Sinkhorn (eps={eps}) did not reach the marginal tolerance "
                         f"{stop_thr} in {max_iter} iterations")


def _sinkhorn_stat(eps, max_iter, stop_thr, device):
    def stat(x, y):
        xt = torch.as_tensor(x, dtype=torch.float64, device=device)
        yt = torch.as_tensor(y, dtype=torch.float64, device=device)
        xy = _ot_eps(xt, yt, eps, max_iter, stop_thr)
        xx = _ot_eps_self(xt, eps, max_iter, stop_thr)
        yy = _ot_eps_self(yt, eps, max_iter, stop_thr)
        return xy - 0.5 * (xx + yy)
    return stat


# --------------------------------------------------------------------------------------
# Bootstrap and floor
# --------------------------------------------------------------------------------------

def _cluster_index(groups, rng):
    """Indices of a cluster bootstrap: whole groups drawn with replacement (correlated
    outputs, e.g. the particles of one SMC run, stay together)."""
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    pick = rng.integers(0, len(members), len(members))
    return np.concatenate([members[i] for i in pick])


def _bootstrap(stat, x, y, n_boot, level, rng, groups=None):
    """Percentile interval, sd and median of the statistic's bootstrap replicates (x resampled
    by whole ``groups`` where given)."""
    n, m = x.shape[0], y.shape[0]
    vals = np.empty(n_boot)
    directions = getattr(stat, "resamples_directions", False)
    for k in range(n_boot):
        ix = rng.integers(0, n, n) if groups is None else _cluster_index(groups, rng)
        xb, yb = x[ix], y[rng.integers(0, m, m)]
        vals[k] = stat(xb, yb, rng) if directions else stat(xb, yb)
    lo, mid, hi = np.quantile(vals, [0.5 - level / 2, 0.5, 0.5 + level / 2])
    return float(lo), float(hi), float(vals.std(ddof=1)), float(mid)


def _floor_samples(x, y_floor, target, rng_floor, device):
    if y_floor is not None:
        y_floor = _as_points(y_floor, "y_floor")
        if y_floor.shape != x.shape:
            raise ValueError(f"y_floor must be an independent target sample of the same shape "
                             f"as x {x.shape}, got {y_floor.shape}")
        return y_floor, "given"
    if target is not None:
        if not callable(getattr(target, "sample", None)):
            raise ValueError("target must have a sample(n, generator=...) method (e.g. a Prior)")
        dev = getattr(target, "device", torch.device("cpu") if device is None else device)
        g = torch.Generator(device=dev).manual_seed(int(rng_floor.integers(0, 2 ** 62)))
        return _as_points(target.sample(x.shape[0], generator=g), "target sample"), \
            "drawn from target"
    return None, None


def _estimate(metric, stat, method, x, y, *, y_floor, target, floor, n_boot, level, seed,
              rngs, device, extra, groups=None):
    rng_boot, _, rng_floor = rngs
    n_boot = _check_boot(n_boot, level)
    raw = stat(x, y)
    if groups is not None:
        groups = np.asarray(groups.cpu() if isinstance(groups, torch.Tensor) else groups).reshape(-1)
        if groups.shape[0] != x.shape[0]:
            raise ValueError(f"groups must label each of the {x.shape[0]} samples")
    q_lo, q_hi, bsd, q_mid = _bootstrap(stat, x, y, n_boot, level, rng_boot, groups)
    how = "x and y resampled" if groups is None else \
        f"x resampled by its {len(np.unique(groups))} groups (cluster bootstrap), y resampled"
    # basic bootstrap: the statistic corrected for its bias once, and its interval
    value, lo, hi = max(0.0, 2 * raw - q_mid), 2 * raw - q_hi, 2 * raw - q_lo
    details = {"n_x": x.shape[0], "n_y": y.shape[0], "d": x.shape[1], "seed": seed,
               "n_boot": n_boot, "level": level, "bootstrap_sd": bsd, "statistic": raw,
               "value": "bias-corrected: max(0, 2 statistic - median of the bootstrap)",
               "ci": f"basic bootstrap (B={n_boot}, {how})", **extra}
    details["bootstrap_interval"] = [lo, hi]
    if floor:
        yf, origin = _floor_samples(x, y_floor, target, rng_floor, device)
        if yf is None:
            raise ValueError("the noise floor needs a second, independent target sample: pass "
                             "y_floor (same shape as x) or target (with a sample method), or "
                             "floor=False")
        _check_pair(yf, y)
        fv = stat(yf, y)
        flo, fhi, fsd, _ = _bootstrap(stat, yf, y, n_boot, level, rng_boot)
        details["floor"] = {"value": fv, "lower": flo, "upper": fhi, "bootstrap_sd": fsd,
                            "samples": origin}
        details["below_floor"] = bool(lo <= fhi)
        # the statistic's own bias (of the size of the floor) is part of the interval
        lower, upper = max(lo - fhi, 0.0), hi + fhi
        details["interval"] = ("basic bootstrap widened on both sides by the floor's "
                               "upper end (sampling bias of the statistic)")
    else:
        details["floor"], details["below_floor"] = None, None
        lower, upper = max(lo, 0.0), hi
        details["interval"] = ("basic bootstrap only (no floor: the statistic's sampling "
                               "bias is NOT covered)")
    value = min(value, max(upper, 0.0))       # inside its interval (2 s - q_lo >= 2 s - q_mid)
    return DistanceEstimate(metric, value, lower, upper, method, 0.5 * (upper - lower), details)


# --------------------------------------------------------------------------------------
# Public estimators
# --------------------------------------------------------------------------------------

def w2_distance(x, y, *, y_floor=None, target=None, floor: bool = True, n_boot: int = 200,
                level: float = 0.95, seed: Optional[int] = None,
                num_itermax: int = DEFAULT_NUM_ITERMAX, groups=None) -> DistanceEstimate:
    r"""Exact empirical :math:`W_2(\hat p_n, \hat q_m)` with bootstrap CI and noise floor.

    Parameters
    ----------
    x : array-like, shape (n, d)
        Samples of the sampler output p.
    y : array-like, shape (m, d)
        Samples of the target q.
    y_floor : array-like, shape (n, d), optional
        A second target sample, independent of ``y``: the floor is the statistic between
        ``y_floor`` and ``y``.
    target : object with ``sample(n, generator=...)``, optional
        Used to draw ``y_floor`` when it is not given (e.g. ``prior.marginal(abar_1)``).
    floor : bool
        Set False to skip the floor (then neither ``y_floor`` nor ``target`` is needed).
    n_boot : int
        Bootstrap resamples (for the value and, separately, for the floor).
    level : float
        Confidence level of the percentile intervals.
    seed : int, optional
        Seeds the bootstrap indices and the floor draws (same seed, same numbers).
    num_itermax : int
        Network simplex iteration cap; reaching it raises :class:`OTNotConverged`.
    groups : array-like, shape (n,), optional
        Group label of each row of ``x`` (correlated samples, e.g. the particles of one SMC
        run): the bootstrap then resamples whole groups of x (cluster bootstrap).

    Returns
    -------
    DistanceEstimate
        ``metric="w2"``, value :math:`W_2` (``details["w2_sq"]`` its square).
    """
    x, y = _as_points(x, "x"), _as_points(y, "y")
    _check_pair(x, y)
    if isinstance(num_itermax, bool) or int(num_itermax) < 1:
        raise ValueError(f"num_itermax must be a positive integer, got {num_itermax}")
    seed, rngs = _seed_streams(seed)
    solver = "ot.emd2_1d (sorting)" if x.shape[1] == 1 else \
        f"ot.emd2 (network simplex, numItermax={int(num_itermax)})"
    est = _estimate("w2", _w2_stat(num_itermax), f"empirical W2, exact OT by {solver}",
                    x, y, y_floor=y_floor, target=target, floor=floor, n_boot=n_boot,
                    level=level, seed=seed, rngs=rngs, device=None,
                    extra={"solver": solver}, groups=groups)
    est.details["w2_sq"] = est.value ** 2
    return est


def sliced_w2_distance(x, y, *, n_projections: int = 200, p: int = 2, y_floor=None,
                       target=None, floor: bool = True, n_boot: int = 200,
                       level: float = 0.95, seed: Optional[int] = None,
                       groups=None) -> DistanceEstimate:
    r"""Sliced Wasserstein :math:`SW_p` with ``n_projections`` uniform directions on
    :math:`S^{d-1}` (POT's convention, module docstring). Other parameters (``groups``
    included) as in :func:`w2_distance`; the directions are drawn once from ``seed``.
    """
    x, y = _as_points(x, "x"), _as_points(y, "y")
    _check_pair(x, y)
    if isinstance(n_projections, bool) or int(n_projections) < 1:
        raise ValueError(f"n_projections must be a positive integer, got {n_projections}")
    if not (isinstance(p, (int, float)) and p >= 1):
        raise ValueError(f"p must be a number >= 1, got {p!r}")
    seed, rngs = _seed_streams(seed)
    proj_seed = np.random.RandomState(int(rngs[1].integers(0, 2 ** 31 - 1)))
    projections = ot.sliced.get_random_projections(x.shape[1], int(n_projections),
                                                   seed=proj_seed)
    method = (f"sliced W{p:g}, {int(n_projections)} uniform directions on S^(d-1) "
              f"(ot.sliced_wasserstein_distance)")
    return _estimate(f"sliced_w{p:g}", _sliced_stat(projections, p), method, x, y,
                     y_floor=y_floor, target=target, floor=floor, n_boot=n_boot,
                     level=level, seed=seed, rngs=rngs, device=None,
                     extra={"p": p, "n_projections": int(n_projections)}, groups=groups)


def sinkhorn_divergence(x, y, *, eps: float = 0.5, max_iter: int = 20000,
                        stop_thr: float = 1e-7, y_floor=None, target=None,
                        floor: bool = True, n_boot: int = 100, level: float = 0.95,
                        seed: Optional[int] = None, device=None) -> DistanceEstimate:
    r"""Debiased Sinkhorn divergence :math:`S_\varepsilon` (module docstring), cost
    :math:`|x-y|^2`, ``eps`` absolute. ``stop_thr``: tolerance on the L2 norm of the
    column-marginal violation (POT's ``stopThr``); not reaching it in ``max_iter`` iterations
    raises :class:`OTNotConverged`. ``device``: torch device for the Sinkhorn iterations.
    Other parameters as in :func:`w2_distance`.
    """
    x, y = _as_points(x, "x"), _as_points(y, "y")
    _check_pair(x, y)
    eps = float(eps)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps}")
    if not (stop_thr > 0):
        raise ValueError(f"stop_thr must be positive, got {stop_thr}")
    seed, rngs = _seed_streams(seed)
    dev = torch.device("cpu") if device is None else torch.device(device)
    method = (f"debiased Sinkhorn divergence S_eps, eps={eps:g}, cost |x-y|^2 "
              f"(ot.bregman.sinkhorn_log + symmetric iteration, dual objective)")
    return _estimate("sinkhorn", _sinkhorn_stat(eps, max_iter, stop_thr, dev), method, x, y,
                     y_floor=y_floor, target=target, floor=floor, n_boot=n_boot,
                     level=level, seed=seed, rngs=rngs, device=dev,
                     extra={"eps": eps, "stop_thr": stop_thr})


_DISPATCH = {"w2": w2_distance, "sliced_w2": sliced_w2_distance,
             "sinkhorn": sinkhorn_divergence}


def sample_distance(x, y, metric: str = "w2", **kwargs) -> DistanceEstimate:
    """Dispatch by name: ``w2``, ``sliced_w2`` or ``sinkhorn``."""
    if metric not in _DISPATCH:
        raise ValueError(f"unknown sample metric {metric!r}; choose from {SAMPLE_METRICS}")
    return _DISPATCH[metric](x, y, **kwargs)


# --------------------------------------------------------------------------------------
# T sweep with common random numbers
# --------------------------------------------------------------------------------------

def _target_draws(prior: Prior, n: int, seed: int):
    """Two independent (X_0, eps) pairs, from which exact samples of q_1 are built for any T."""
    gt = torch.Generator(device=prior.device).manual_seed(seed + 1)
    pairs = []
    for _ in range(2):
        x0 = prior.sample(n, generator=gt)
        e0 = torch.randn(n, prior.dim, generator=gt, dtype=torch.float64, device=prior.device)
        pairs.append((x0, e0))
    return pairs


def _check_n_seed(n, seed):
    if isinstance(n, bool) or not float(n).is_integer() or int(n) < 2:
        raise ValueError(f"n must be an integer >= 2, got {n}")
    if isinstance(seed, bool) or not float(seed).is_integer():
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return int(n), int(seed)


def _one_sampler(prior, rule, n, seed, draws, metric, score_factory, device, metric_kwargs):
    if not isinstance(rule, (AffineRule, StepSampler, StageRule)):
        raise ValueError(f"a sampler must be an AffineRule, a StageRule or a StepSampler, got "
                         f"{type(rule).__name__}")
    if metric == "sinkhorn":                 # its iterations run where the samples are
        metric_kwargs = {"device": device, **metric_kwargs}
    score = (score_factory or AnalyticScore)(prior, rule.schedule)
    g = torch.Generator(device=device).manual_seed(seed)
    x = run_sampler(rule, score, n, prior.dim, generator=g, device=device)
    # the target: q_1, or the data law (rule.target == "data": alpha_bar_0 = 1)
    ab1 = float(rule.schedule.alpha_bar[rule.stop])
    om1 = float(rule.schedule.one_minus_alpha_bar[rule.stop])
    (x0, e0), (x0f, e0f) = draws
    y = math.sqrt(ab1) * x0 + math.sqrt(om1) * e0
    yf = math.sqrt(ab1) * x0f + math.sqrt(om1) * e0f
    est = _DISPATCH[metric](x, y, y_floor=yf, seed=seed, **metric_kwargs)
    est.details.update(T=rule.T, sampler=rule.name, schedule=rule.schedule.name)
    return est


def sampler_distance(prior: Prior, sampler, n: int, *, metric: str = "w2", seed: int = 0,
                     score_factory: Optional[Callable] = None, device=None,
                     **metric_kwargs) -> DistanceEstimate:
    r"""Sample-based distance between the output of ``sampler`` (an :class:`AffineRule` or a
    :class:`~theory.samplers.StepSampler`) and its target :math:`q_1`, with interval and floor.

    ``n`` outputs of :func:`~theory.samplers.run_sampler` (torch generator seeded with
    ``seed``, on ``device``) against ``n`` exact draws of :math:`q_1`, and ``n`` further
    exact draws for the floor (:math:`y = \sqrt{\bar\alpha_1} X_0 + \sqrt{1-\bar\alpha_1}
    \varepsilon`, from a generator seeded with ``seed + 1``). ``score_factory(prior,
    schedule)`` replaces the exact score (:class:`~theory.samplers.AnalyticScore`); the
    ``metric_kwargs`` go to the metric (``n_boot``, ``n_projections``, ``eps``, ...).
    """
    if metric not in _DISPATCH:
        raise ValueError(f"unknown sample metric {metric!r}; choose from {SAMPLE_METRICS}")
    n, seed = _check_n_seed(n, seed)
    dev = prior.device if device is None else torch.device(device)
    return _one_sampler(prior, sampler, n, seed, _target_draws(prior, n, seed), metric,
                        score_factory, dev, metric_kwargs)


def sweep_T(prior: Prior, Ts: Sequence[int], n: int, *, sampler: str = "li-sde",
            schedule: str = "li", metric: str = "w2", seed: int = 0,
            rule_factory: Optional[Callable[[int], AffineRule]] = None,
            score_factory: Optional[Callable] = None, device=None,
            **metric_kwargs) -> list:
    r"""Sample-based distance between the sampler output and :math:`q_1` for each T, with
    common random numbers (CRN) so that differences between T are not swamped by noise.

    What is shared between the values of T:

    * **sampler streams**: a fresh torch generator seeded with ``seed`` drives
      :func:`~theory.samplers.run_sampler` for every T, so :math:`Y_T` is the same (n, d)
      draw for every T, and the k-th noise vector *in order of use* (k = 1, 2, ...) is the
      same; a longer run uses further draws of the same stream. (Steps of different T sit at
      different times, so noise is shared by order, not by time.)
    * **targets**: :math:`q_1` changes with T (:math:`\bar\alpha_1 = 1 - \beta_1(T)`); its
      samples are built from one shared draw :math:`(X_0, \varepsilon)` (``prior.sample``
      and ``randn``, from a generator seeded with ``seed + 1``) as
      :math:`y = \sqrt{\bar\alpha_1} X_0 + \sqrt{1 - \bar\alpha_1}\,\varepsilon`, exact
      samples of every :math:`q_1(T)`; likewise a second independent pair gives the floor
      samples (n of them).
    * **bootstrap and projections**: the metric gets the same ``seed`` for every T, so the
      bootstrap resamples the same indices and sliced W uses the same directions.

    Parameters
    ----------
    prior : Prior
    Ts : sequence of int
    n : int
        Samples from the sampler and from the target (each).
    sampler, schedule : str
        Built-in rule and schedule names (ignored if ``rule_factory`` is given).
    metric : {"w2", "sliced_w2", "sinkhorn"}
    rule_factory : callable ``T -> AffineRule or StepSampler``, optional
        A user's sampler (bring your own: coefficients or a step function).
    score_factory : callable ``(prior, schedule) -> score``, optional
        Default :class:`~theory.samplers.AnalyticScore` (the exact score).
    device
        Torch device of the sampler run (the prior must live there).
    **metric_kwargs
        Passed to the metric (``n_boot``, ``level``, ``eps``, ...).

    Returns
    -------
    list of DistanceEstimate
        One per T, with ``details["T"]``, ``details["sampler"]`` and ``details["crn"]``.
    """
    if metric not in _DISPATCH:
        raise ValueError(f"unknown sample metric {metric!r}; choose from {SAMPLE_METRICS}")
    Ts = [int(T) for T in Ts]
    if not Ts:
        raise ValueError("Ts is empty")
    n, seed = _check_n_seed(n, seed)
    dev = prior.device if device is None else torch.device(device)
    draws = _target_draws(prior, n, seed)
    out = []
    for T in Ts:
        rule = rule_factory(T) if rule_factory is not None else \
            sampler_rule(sampler, make_schedule(schedule, T))
        est = _one_sampler(prior, rule, n, seed, draws, metric, score_factory, dev,
                           metric_kwargs)
        est.details.update(crn=f"sampler generator seed {seed} for every T (same Y_T, same "
                               f"noise stream by order of use); targets from one shared "
                               f"(X_0, eps) draw (seed {seed + 1}); same bootstrap/projection "
                               f"seed")
        out.append(est)
    return out
