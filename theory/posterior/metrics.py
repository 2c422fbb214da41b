r"""A posterior sampler's output against the exact posterior (THEORY.md section 8).

**Exact posteriors** (:func:`exact_posterior`): a mixture prior with a linear-Gaussian
likelihood has a Gaussian-mixture posterior (:mod:`theory.posterior.closed_form`); a product
prior with a diagonal likelihood (denoising, inpainting) has a product of 1-D mixture
posteriors in any d; a 1-D problem with any likelihood has its posterior as masses on a fine
grid, :math:`\propto p(x_i)e^{\ell(x_i)}`.

**Metrics** (:func:`posterior_metrics`), each a dict with ``value``, ``lower``, ``upper``
(a 95% interval that contains the value), ``method``, ``floor`` / ``floor_upper`` (the same
statistic for n exact posterior draws: what the estimator returns for a perfect sampler) and
``below_floor``:

* ``tv`` (d <= 2): binned TV against the grid posterior
  (:func:`theory.posterior.estimators.binned_tv`, ``binned_tv_2d``); the plug-in is biased
  up (its mean over exact draws is the floor), so the interval is the basic bootstrap
  interval joined with the plug-in value. Binning can only lower TV: the true TV is at least
  the binned TV. (Exact laws of chains on grids: issue 10's engines, not wired yet.)
* ``w2`` (d <= 2; in higher d the empirical W2 is biased by about :math:`n^{-2/d}`) and
  ``sliced_w2`` (200 directions, any d): :mod:`theory.distances.samples`, against exact
  posterior draws, interval widened by the floor.
* ``marginal_ks`` (any d): the mean over coordinates of the Kolmogorov distance
  :math:`\sup_v |\hat F_i(v) - F_i(v)|` between the method's empirical marginal and the
  exact posterior marginal CDF :math:`F_i` (no reference draws). It is a distance between
  the marginal laws (0 only when every marginal is exact; it ignores the dependence between
  coordinates, which for a product posterior is the only thing left of the law) and a lower
  bound on the mean marginal TV. Its floor, the same statistic for n exact draws, is about
  :math:`0.87/\sqrt n` whatever d is (sliced W2's, in d = 100 on a bimodal product, is
  about 0.2 at n = 512 while a random direction divides each coordinate's error by
  :math:`\sqrt d`).
* ``mmse_gap``: :math:`\|E_{method}[x] - E_{post}[x]\|^2/\mathrm{tr\,Cov}_{post}`, estimated
  without the :math:`\mathrm{tr\,Cov}/n` bias of the plug-in: :math:`(\|\hat m - m\|^2 -
  \mathrm{tr}\,\widehat{\mathrm{Var}}(\hat m))/\mathrm{tr\,Cov}_{post}` (the variance of the
  sample mean from the spread of the group means: correlated outputs counted as groups).
* ``coverage_error``: for the level 0.9, the mean over coordinates of
  :math:`|P_{post}(\text{method's central 0.9-interval}) - 0.9|` (exact posterior mass of the
  method's empirical interval); the details add the level 0.5, the mean mass (below the level:
  too narrow) and the fraction of the method's samples inside the posterior's own central
  interval.
* ``mode_weight_error``: :math:`\tfrac12\sum_k |\bar r_k - \pi'_k|`, :math:`\bar r_k` the mean
  over the method's samples of the posterior responsibility of component k (for a mixture
  prior :math:`p(k \mid x, y) = p(k \mid x)`, the prior's responsibility), :math:`\pi'_k` the
  exact posterior weight; averaged over coordinates for product priors. THEORY.md section 8
  counts the fraction of samples whose most likely component is k; that fraction is biased
  for exact draws where components overlap, while the mean responsibility has expectation
  exactly :math:`\pi'_k` under the posterior, so the soft version is used.

Intervals of the last three are percentile bootstraps (``n_boot`` resamples; whole groups of
correlated outputs resampled together), joined with the value.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from scipy.special import ndtr

from ..checks import NoExactLaw
from ..distances.samples import sliced_w2_distance, w2_distance
from ..priors import GaussianMixture, IsotropicMixture, Prior, ProductPrior
from .closed_form import as_gmm, posterior_closed_form
from .estimators import binned_tv, binned_tv_2d
from .grid_base import tv_and_kink, tv_masses
from .likelihoods import Likelihood

__all__ = ["ExactPosterior", "MixturePosterior", "ProductPosterior", "GridPosterior1D",
           "IsotropicPosterior", "exact_grid_tv",
           "exact_posterior", "posterior_metrics", "METRIC_NAMES"]

DTYPE = torch.float64
METRIC_NAMES = ("tv", "w2", "sliced_w2", "marginal_ks", "mmse_gap", "coverage_error",
                "mode_weight_error")


def _np(x):
    return x.detach().cpu().numpy().astype(np.float64) if torch.is_tensor(x) else np.asarray(x, float)


class ExactPosterior:
    """Interface of an exact posterior: ``dim``, ``description``, :meth:`sample`,
    :meth:`mean`, :meth:`total_var`, per-coordinate :meth:`marginal_cdf` /
    :meth:`marginal_quantile`, component :meth:`weights` (G, K) and
    :meth:`responsibilities` (n, G, K), and :meth:`grid` (axes, masses) in d <= 2."""

    dim: int
    description: str = ""

    def grid(self):
        return None


def _mixture_quantile(p, w, mu, sd, iters=80):
    """Per-coordinate quantile of 1-D mixtures: w (G?, K), mu/sd (K, d) -> (d,)."""
    lo = (mu - 12 * sd).min(0)
    hi = (mu + 12 * sd).max(0)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        F = (w[:, None] * ndtr((mid[None] - mu) / sd)).sum(0)
        lo, hi = np.where(F < p, mid, lo), np.where(F < p, hi, mid)
    return 0.5 * (lo + hi)


class _GaussianMixtureMarginals(ExactPosterior):
    """Mean, coordinate marginals and weights of a posterior that is a Gaussian mixture
    with component weights ``w`` (K,), means ``mu`` (K, d) and coordinate sds ``sd`` (K, d)."""

    def mean(self):
        return (self.w[:, None] * self.mu).sum(0)

    def marginal_cdf(self, v):
        return (self.w[:, None, None] * ndtr((v[None] - self.mu[:, None, :]) / self.sd[:, None, :])).sum(0)

    def marginal_quantile(self, p):
        return _mixture_quantile(p, self.w, self.mu, self.sd)

    def weights(self):
        return self.w[None]


class MixturePosterior(_GaussianMixtureMarginals):
    """A Gaussian-mixture posterior (closed form); responsibilities from the prior when the
    components correspond (they do unless a posterior weight underflowed)."""

    def __init__(self, post: GaussianMixture, prior: Optional[Prior] = None):
        self.post, self.dim = post, post.dim
        self.w = _np(post.weights)
        self.mu = _np(post.means)
        self.sd = np.sqrt(np.maximum(_np(torch.diagonal(post.covs, dim1=-2, dim2=-1)), 1e-300))
        self._prior = prior if (prior is not None and getattr(prior, "n_components", -1)
                                == post.n_components) else None
        self.description = f"closed-form Gaussian-mixture posterior ({post.n_components} components)"

    def sample(self, n, generator=None):
        return self.post.sample(n, generator=generator)

    def total_var(self):
        tr = _np(torch.diagonal(self.post.covs, dim1=-2, dim2=-1)).sum(1)
        m = self.mean()
        return float((self.w * (tr + (self.mu ** 2).sum(1))).sum() - (m ** 2).sum())

    def responsibilities(self, x):
        src = self._prior if self._prior is not None else self.post
        return _np(src.responsibilities(torch.as_tensor(x, dtype=DTYPE)))[:, None, :]

    def grid(self):
        if self.dim > 2:
            return None
        live = self.w > 1e-8 * self.w.max()
        lo = (self.mu[live] - 8 * self.sd[live]).min(0)
        hi = (self.mu[live] + 8 * self.sd[live]).max(0)
        npts = 4001 if self.dim == 1 else 401
        h = float((hi - lo).max()) / (npts - 1)               # one spacing on every axis
        axes = [lo[i] + h * np.arange(int(np.ceil((hi[i] - lo[i]) / h)) + 1)
                for i in range(self.dim)]
        if self.dim == 1:
            pts = axes[0][:, None]
        else:
            X, Y = np.meshgrid(*axes, indexing="ij")
            pts = np.stack([X.ravel(), Y.ravel()], 1)
        logp = _np(self.post.log_prob(torch.as_tensor(pts, dtype=DTYPE)))
        m = np.exp(logp - logp.max())
        m = m / m.sum()
        return axes, (m if self.dim == 1 else m.reshape(axes[0].size, axes[1].size))


class ProductPosterior(ExactPosterior):
    """Independent coordinates, coordinate i the 1-D mixture posterior
    :math:`\\sum_k \\pi'_{ik} N(\\mu'_{ik}, v'_{ik})` (product prior, diagonal linear-Gaussian
    likelihood: identity or mask, any d)."""

    def __init__(self, prior: ProductPrior, lik):
        A = _np(lik.A)
        y = _np(lik.y)
        w, mu, sd = (_np(a) for a in (prior.weights, prior.means, prior.stds))
        var = sd ** 2
        self.prior, self.dim = prior, prior.dim
        self.w, self.mu, self.var = w.copy(), mu.copy(), var.copy()
        s2 = lik.sigma ** 2
        for j in range(A.shape[0]):
            i = int(np.flatnonzero(A[j])[0])
            a = A[j, i]
            cy = a * a * var[i] + s2
            logw = np.log(np.maximum(w[i], 1e-300)) - 0.5 * ((y[j] - a * mu[i]) ** 2 / cy + np.log(cy))
            ww = np.exp(logw - logw.max())
            self.w[i] = ww / ww.sum()
            gain = var[i] * a / cy
            self.mu[i] = mu[i] + gain * (y[j] - a * mu[i])
            self.var[i] = var[i] - gain * a * var[i]
        self.sd = np.sqrt(np.maximum(self.var, 1e-300))
        self.description = (f"product of {self.dim} closed-form 1-D mixture posteriors "
                            f"({w.shape[1]} components each)")

    def sample(self, n, generator=None):
        W = torch.as_tensor(self.w, dtype=DTYPE)
        k = torch.multinomial(W, n, replacement=True, generator=generator).T         # (n, d)
        z = torch.randn(n, self.dim, generator=generator, dtype=DTYPE)
        mu, sd = torch.as_tensor(self.mu), torch.as_tensor(self.sd)
        idx = torch.arange(self.dim)[None]
        return mu[idx, k] + sd[idx, k] * z

    def mean(self):
        return (self.w * self.mu).sum(1)

    def total_var(self):
        m = self.mean()
        return float(((self.w * (self.var + self.mu ** 2)).sum(1) - m ** 2).sum())

    def marginal_cdf(self, v):
        return (self.w.T[:, None, :] * ndtr((v[None] - self.mu.T[:, None, :]) / self.sd.T[:, None, :])).sum(0)

    def marginal_quantile(self, p):
        lo = (self.mu - 12 * self.sd).min(1)
        hi = (self.mu + 12 * self.sd).max(1)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            F = (self.w * ndtr((mid[:, None] - self.mu) / self.sd)).sum(1)
            lo, hi = np.where(F < p, mid, lo), np.where(F < p, hi, mid)
        return 0.5 * (lo + hi)

    def weights(self):
        return self.w

    def responsibilities(self, x):
        return _np(self.prior.responsibilities(torch.as_tensor(x, dtype=DTYPE)))


class GridPosterior1D(ExactPosterior):
    """A 1-D posterior as masses on a fine uniform grid (any likelihood):
    :math:`P_i \\propto p(x_i)e^{\\ell(x_i)}`; draws by the inverse CDF of the cells with a
    uniform position inside the cell (an error of order h, h = 1e-3 of the range)."""

    def __init__(self, prior: Prior, lik: Likelihood, n_points: int = 20001, pad: float = 10.0):
        g = as_gmm(prior)
        mu, sd = _np(g.means)[:, 0], np.sqrt(_np(g.covs)[:, 0, 0])
        self.x = np.linspace((mu - pad * sd).min() - 1, (mu + pad * sd).max() + 1, n_points)
        self.h = float(self.x[1] - self.x[0])
        pts = torch.as_tensor(self.x[:, None], dtype=DTYPE)
        logm = _np(prior.log_prob(pts)) + _np(lik.log_lik(pts))
        m = np.exp(logm - logm.max())
        self.mass = m / m.sum()
        self.cdf = np.cumsum(self.mass)
        self.prior, self.dim = prior, 1
        self.r = _np(prior.responsibilities(pts)).reshape(n_points, -1)
        self.description = f"grid posterior ({n_points} points, h = {self.h:.3g})"

    def sample(self, n, generator=None):
        u = torch.rand(n, generator=generator, dtype=DTYPE).numpy()
        v = torch.rand(n, generator=generator, dtype=DTYPE).numpy()
        i = np.minimum(np.searchsorted(self.cdf, u), self.x.size - 1)
        return torch.as_tensor(self.x[i] + (v - 0.5) * self.h, dtype=DTYPE)[:, None]

    def mean(self):
        return np.array([(self.mass * self.x).sum()])

    def total_var(self):
        m = self.mean()[0]
        return float((self.mass * (self.x - m) ** 2).sum() + self.h ** 2 / 12)

    def marginal_cdf(self, v):
        edges = np.concatenate([[self.x[0] - self.h / 2], self.x + self.h / 2])
        F = np.concatenate([[0.0], self.cdf])
        return np.interp(v, edges, F)

    def marginal_quantile(self, p):
        edges = np.concatenate([[self.x[0] - self.h / 2], self.x + self.h / 2])
        F = np.concatenate([[0.0], self.cdf])
        return np.array([np.interp(p, F, edges)])

    def weights(self):
        return (self.mass[:, None] * self.r).sum(0)[None]

    def responsibilities(self, x):
        r = _np(self.prior.responsibilities(torch.as_tensor(x, dtype=DTYPE)))
        return r.reshape(r.shape[0], 1, -1)

    def grid(self):
        return [self.x], self.mass


class IsotropicPosterior(_GaussianMixtureMarginals):
    r"""The posterior of an :class:`~theory.priors.IsotropicMixture` prior
    :math:`\sum_k\pi_k N(\mu_k, v_kI)` under :math:`y = Ax + \sigma\varepsilon`, kept in the
    SVD :math:`A = U\,\mathrm{diag}(s)V^\top` (V: d x r): component k is
    :math:`N(\mu'_k, v_k(I - V\,\mathrm{diag}(c_k)V^\top))`, :math:`c_{kj} = s_j^2/(s_j^2 + \sigma^2/v_k)`,
    :math:`\mu'_k = \mu_k + v_kA^\top(v_kAA^\top + \sigma^2I)^{-1}(y - A\mu_k)`, weights
    :math:`\propto\pi_kN(y; A\mu_k, v_kAA^\top + \sigma^2I)`: O(K d r) memory instead of
    K dense d x d covariances (d = 800 in the MCGdiff benchmark)."""

    def __init__(self, prior: IsotropicMixture, lik):
        A, y = _np(lik.A), _np(lik.y)
        U, sv, Vt = np.linalg.svd(A, full_matrices=False)
        keep = sv > 1e-12 * sv.max()
        U, sv, V = U[:, keep], sv[keep], Vt[keep].T
        w, mu, v = _np(prior.weights), _np(prior.means), _np(prior.variances)
        s2 = lik.sigma ** 2
        r = y[None] - mu @ A.T                                           # (K, m)
        ru = r @ U                                                       # (K, r)
        cov_y = v[:, None] * sv[None] ** 2 + s2                          # eigenvalues (K, r)
        m = A.shape[0]
        perp = ((r ** 2).sum(1) - (ru ** 2).sum(1)) / s2                 # outside U's span
        logw = (np.log(np.maximum(w, 1e-300)) - 0.5 * ((ru ** 2 / cov_y).sum(1) + perp
                + np.log(cov_y).sum(1) + (m - sv.size) * np.log(s2)))
        ww = np.exp(logw - logw.max())
        self.w = ww / ww.sum()
        # mean: mu + v V diag(s / cov_y) U^T r
        self.mu = mu + v[:, None] * ((ru * sv[None] / cov_y) @ V.T)
        self.v, self.V = v, V
        self.c = sv[None] ** 2 / (sv[None] ** 2 + s2 / v[:, None])       # (K, r)
        self.sd = np.sqrt(np.maximum(v[:, None] * (1 - (V[None] ** 2 * self.c[:, None, :]).sum(-1)),
                                     1e-300))                            # marginal sds (K, d)
        self.prior, self.dim = prior, prior.dim
        self.description = (f"closed-form posterior of a {w.size}-component isotropic mixture "
                            f"(rank-{sv.size} covariance updates)")

    def sample(self, n, generator=None):
        k = torch.multinomial(torch.as_tensor(self.w), n, replacement=True, generator=generator).numpy()
        z = torch.randn(n, self.dim, generator=generator, dtype=DTYPE).numpy()
        shrink = 1 - np.sqrt(1 - self.c[k])                               # (n, r)
        zv = z @ self.V
        x = self.mu[k] + np.sqrt(self.v[k])[:, None] * (z - (zv * shrink) @ self.V.T)
        return torch.as_tensor(x, dtype=DTYPE)

    def total_var(self):
        tr = self.v * (self.dim - self.c.sum(1))
        m = self.mean()
        return float((self.w * (tr + (self.mu ** 2).sum(1))).sum() - (m ** 2).sum())

    def responsibilities(self, x):
        return _np(self.prior.responsibilities(torch.as_tensor(x, dtype=DTYPE)))[:, None, :]


def exact_posterior(prior: Prior, lik: Likelihood) -> ExactPosterior:
    """The exact posterior of a problem (module docstring); :class:`NoExactLaw` if none."""
    if lik.linear_gaussian:
        if isinstance(prior, ProductPrior) and lik.diagonal and prior.dim > 2:
            return ProductPosterior(prior, lik)
        if isinstance(prior, IsotropicMixture) and prior.dim > 2:
            return IsotropicPosterior(prior, lik)
        return MixturePosterior(posterior_closed_form(prior, lik),
                                prior if isinstance(prior, (GaussianMixture, IsotropicMixture))
                                else None)
    if prior.dim == 1:
        return GridPosterior1D(prior, lik)
    raise NoExactLaw(f"no exact posterior for the {lik.name} likelihood in d = {prior.dim}")


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------

def _group_index(groups, n):
    """Members of each group (None: every sample its own group)."""
    if groups is None:
        return None
    g = _np(groups).astype(np.int64)
    return [np.flatnonzero(g == k) for k in np.unique(g)]


def _resample(members, n, rng):
    if members is None:
        return rng.integers(0, n, n)
    return np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])


def _entry(value, boot, method, floor_value, floor_boot, details=None, biased_up=False):
    r"""One metric's entry from its statistic, bootstrap replicates and floor (the same
    statistic for exact draws: its value and replicates).

    ``biased_up`` (statistics of an absolute value, |.| or a sup: the marginal KS, coverage
    and mode-weight errors): the raw statistic overstates the distance by the sampling noise
    and its bootstrap replicates overstate it again, so a percentile interval can lie wholly
    above the statistic. As for the binned TV and the OT distances, the entry then stands
    behind the basic-bootstrap correction: value :math:`\max(0, 2s - \mathrm{median}(s^*))`,
    interval :math:`[2s - s^*_{0.975}, 2s - s^*_{0.025}]` (clipped at 0; it contains the value
    by construction) widened on both sides by the floor's 97.5% quantile (the basic
    bootstrap removes the bias only partly: for exact draws of the inpainting posterior,
    n = 400, the mean marginal KS is 0.043 raw and still 0.026 corrected, and no basic
    interval of 20 reached 0), the raw statistic beside it (``statistic``); ``below_floor`` compares
    the raw statistic with the 97.5% quantile of the exact draws' raw statistic. Otherwise
    (the MMSE gap, bias-corrected in closed form) the percentile interval of the replicates,
    widened to contain the value."""
    flo_hi = float(np.quantile(floor_boot, 0.975))
    v = float(value)
    if biased_up:
        q_lo, q_mid, q_hi = (float(q) for q in np.quantile(boot, [0.025, 0.5, 0.975]))
        lo = max(0.0, 2 * v - q_hi)
        hi = max(lo, 2 * v - q_lo)
        corrected = min(max(0.0, 2 * v - q_mid), hi)
        lo, hi = max(0.0, lo - flo_hi), hi + flo_hi
        return {"value": corrected, "lower": lo, "upper": hi, "statistic": v,
                "method": method + "; bias-corrected, 95% basic-bootstrap interval widened by "
                "the floor's 97.5% quantile",
                "floor": float(floor_value), "floor_upper": flo_hi,
                "below_floor": bool(v <= flo_hi), "details": details or {}}
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return {"value": v, "lower": float(min(lo, v)), "upper": float(max(hi, v)), "method": method,
            "floor": float(floor_value), "floor_upper": flo_hi, "below_floor": bool(lo <= flo_hi),
            "details": details or {}}


def _pick_counts(picks, G):
    """(B, G) multiplicities of each group in each resample of ``picks`` (B, G)."""
    B = picks.shape[0]
    flat = (np.arange(B)[:, None] * G + picks).ravel()
    return np.bincount(flat, minlength=B * G).reshape(B, G).astype(float)


def _mmse_boot(post: ExactPosterior, x, members, picks):
    r"""The bias-corrected MMSE gap of ``x`` (module docstring) for the original sample and
    for each cluster-bootstrap resample in ``picks`` (B, G) of the groups ``members``:
    returns (value, (B,) values).

    A resample is its multiplicities :math:`c_{bg}` of the groups (sizes :math:`s_g`, sums
    :math:`S_g`, means :math:`\bar x_g`): its mean is :math:`\hat m_b = \sum_g c_{bg} S_g /
    n_b`, :math:`n_b = \sum_g c_{bg} s_g`, and the variance of that mean is estimated by
    :math:`\frac{G}{G-1}\sum_g c_{bg} (s_g/n_b)^2 \|\bar x_g - \hat m_b\|^2`. Expanding the
    square about the overall sample mean makes every sum over groups one product with the
    (B, G) count matrix, so the B resamples cost a few GEMMs (not a (B, G, d) array)."""
    m, tr = post.mean(), post.total_var()
    if members is None:
        gsum, size = x, np.ones(x.shape[0])
    else:
        gsum = np.stack([x[mm].sum(0) for mm in members])               # (G, d)
        size = np.array([len(mm) for mm in members], dtype=float)
    G = gsum.shape[0]
    centre = gsum.sum(0) / size.sum()
    z = gsum / size[:, None] - centre                                   # group means, centred
    s2 = size ** 2
    a = s2 * (z ** 2).sum(1)                                            # (G,)
    sz = s2[:, None] * z                                                # (G, d)
    offset = centre - m

    def stat(C):                                                        # C (B, G) counts
        ns = C @ size                                                   # (B,)
        w = (C @ (size[:, None] * z)) / ns[:, None]                     # resample mean - centre
        dev = C @ a - 2.0 * ((C @ sz) * w).sum(1) + (C @ s2) * (w ** 2).sum(1)
        var_mean = G / (G - 1) * dev / ns ** 2
        return (((w + offset) ** 2).sum(1) - var_mean) / tr

    return float(stat(np.ones((1, G)))[0]), stat(_pick_counts(picks, G))


def _coverage(post: ExactPosterior, level: float):
    """The coverage statistic at ``level``: ``stat(x, full)`` on a sample, and
    ``stat.of_rows(x)``, which returns a function of a resample's row indices giving
    ``(error, mean mass)`` from the columns of ``x`` sorted once (the same numbers as
    ``stat(x[rows], True)[:2]``, without sorting each resample)."""
    a = (1 - level) / 2
    Qlo, Qhi = post.marginal_quantile(a), post.marginal_quantile(1 - a)

    def mass_of(qlo, qhi):
        return post.marginal_cdf(qhi[None])[0] - post.marginal_cdf(qlo[None])[0]

    def stat(x, full=False):
        qlo, qhi = np.quantile(x, [a, 1 - a], axis=0)
        mass = mass_of(qlo, qhi)
        err = float(np.abs(mass - level).mean())
        if not full:
            return err
        inside = ((x >= Qlo) & (x <= Qhi)).mean(0)
        return err, float(mass.mean()), float(np.abs(inside - level).mean()), float(inside.mean())

    def of_rows(x):
        cols = _SortedColumns(x)

        def f(rows):
            qlo, qhi = cols.quantiles(rows, (a, 1 - a))
            mass = mass_of(qlo, qhi)
            return float(np.abs(mass - level).mean()), float(mass.mean())
        return f

    stat.of_rows = of_rows
    return stat


def _marginal_u(post: ExactPosterior, x, rows: int = 256):
    """The exact marginal CDFs at the samples, :math:`F_i(x_{ji})`, (n, d), in row chunks
    (a mixture's CDF holds K x rows x d numbers)."""
    return np.concatenate([np.asarray(post.marginal_cdf(x[i:i + rows]), float).reshape(-1, x.shape[1])
                           for i in range(0, x.shape[0], rows)])


def _mean_ks(U):
    """Mean over columns of the Kolmogorov distance of the empirical law of each column of
    ``U`` (values of the exact CDF at the samples) from the uniform: the KS distance of the
    samples from the exact marginal, the CDF being monotone."""
    m = U.shape[0]
    Us = np.sort(U, 0)
    i = np.arange(1, m + 1)[:, None] / m
    return float(np.maximum(i - Us, Us - (i - 1.0 / m)).max(0).mean())


class _SortedColumns:
    r"""The columns of ``U`` sorted once, so that the mean KS of any resample of its rows
    (given by the rows' multiplicities) needs a gather and a cumulative sum instead of a
    sort. With multiplicities :math:`c` in the sorted order of a column, the empirical CDF
    at the k-th smallest value is :math:`C_k = \sum_{j\le k} c_j / m` and the Kolmogorov
    distance is :math:`\max_k \max(C_k - U_{(k)}, U_{(k)} - C_k + c_k/m)`; rows drawn zero
    times never attain the maximum (their terms are bounded by a drawn neighbour's), so this
    equals :func:`_mean_ks` of the resample."""

    def __init__(self, U):
        # held column by column (d, n): the cumulative sums run along contiguous rows
        self.order = np.argsort(U.T, 1, kind="stable")
        self.Us = np.take_along_axis(U.T, self.order, 1)

    def mean_ks(self, rows):
        c = np.bincount(rows, minlength=self.Us.shape[1]).astype(float)
        cs = c[self.order]
        m = float(c.sum())
        cum = np.cumsum(cs, 1) / m
        gap = np.maximum(cum - self.Us, self.Us - (cum - cs / m))
        return float(gap.max(1).mean())

    def quantiles(self, rows, ps):
        """Per column, ``np.quantile`` (its default linear interpolation between order
        statistics) of the resample ``rows`` at each level in ``ps``: (len(ps), d). The
        resample's order statistic of rank r is the first sorted value whose cumulative
        multiplicity exceeds r."""
        c = np.bincount(rows, minlength=self.Us.shape[1])
        cum = np.cumsum(c[self.order], 1)
        N = int(c.sum())
        cols = np.arange(self.Us.shape[0])
        out = []
        for p in ps:
            h = (N - 1) * float(p)
            lo = math.floor(h)
            t = h - lo
            a = self.Us[cols, (cum > lo).argmax(1)]
            b = self.Us[cols, (cum > min(lo + 1, N - 1)).argmax(1)]
            out.append(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t))
        return np.stack(out)


def _modes(post: ExactPosterior, x, y_floor):
    pi = post.weights()                                                 # (G, K)
    R = post.responsibilities(x)                                        # (n, G, K)
    Rf = post.responsibilities(y_floor)

    def stat_of(Rs):
        return lambda idx: float(0.5 * np.abs(Rs[idx].mean(0) - pi).sum(-1).mean())
    return stat_of(R), stat_of(Rf), R.shape[1], R.shape[2]


def exact_grid_tv(law_mass, law_error: float, post: ExactPosterior) -> dict:
    """TV between a sampler's exact output law, given as masses on the posterior's own grid
    (:meth:`ExactPosterior.grid`, e.g. from the 1-D / 2-D chain engines of issue 10), and the
    posterior's grid masses: a quadrature with the engine's error bound ``law_error`` plus
    the kink-corrected sum's own O(h^2) term, no sampling floor."""
    axes, mass = post.grid()
    lm = np.asarray(law_mass, float)
    if lm.shape != np.shape(mass):
        raise ValueError(f"the law's masses have shape {lm.shape}, the posterior grid {np.shape(mass)}")
    if lm.ndim == 1:
        v, kink = tv_masses(lm, mass), 0.0
    else:
        v, kink = tv_and_kink(lm, mass)
    err = float(law_error) + kink
    return {"value": v, "lower": max(0.0, v - err), "upper": min(1.0, v + err),
            "method": "exact output law on the posterior grid (chain engine), quadrature; "
                      "error = the engine's bound + the kink term", "floor": 0.0,
            "floor_upper": 0.0, "below_floor": False, "details": {"law": post.description}}


def posterior_metrics(samples, post: ExactPosterior, *, groups=None, n_ref: Optional[int] = None,
                      n_boot: int = 100, ot_boot: int = 20, n_projections: int = 200,
                      seed: int = 0, metrics=METRIC_NAMES, max_w2_points: int = 2000,
                      exact_law=None) -> dict:
    r"""Every metric of the module docstring for ``samples`` (n, d) against ``post``, as
    ``{name: entry}`` (entries described there; a metric that does not apply has
    ``{"value": None, "why": ...}``).

    ``groups`` (n,): run labels of correlated outputs (cluster bootstrap everywhere);
    ``n_ref``: exact posterior draws for the comparison (default n; the floor always uses a
    second independent set of n draws); ``n_boot`` bootstrap resamples of the cheap
    statistics, ``ot_boot`` of W2 / sliced W2; ``seed`` seeds the exact draws and the
    bootstraps (same seed, same numbers). ``exact_law``: ``(masses, error)`` of the
    sampler's exact output law on ``post.grid()`` (chain engines): TV is then
    :func:`exact_grid_tv` instead of the binned estimate.
    """
    x = _np(samples)
    if x.ndim == 1:
        x = x[:, None]
    n, d = x.shape
    if d != post.dim:
        raise ValueError(f"samples have dimension {d}, the posterior {post.dim}")
    if not np.all(np.isfinite(x)):
        bad = int((~np.isfinite(x)).any(1).sum())
        raise ValueError(f"{bad} of {n} samples are not finite")
    g = torch.Generator().manual_seed(int(seed) + 7919)
    y = _np(post.sample(n_ref or n, generator=g))
    yf = _np(post.sample(n, generator=g))
    rng = np.random.default_rng(seed)
    members = _group_index(groups, n)
    out = {}
    gr = None if groups is None else _np(groups)
    if "tv" in metrics and exact_law is not None:
        out["tv"] = exact_grid_tv(exact_law[0], exact_law[1], post)
    elif "tv" in metrics:
        grid = post.grid()
        if grid is None:
            out["tv"] = {"value": None, "why": f"no grid law in d = {d} (TV needs a density)"}
        else:
            axes, mass = grid
            if d == 1:
                b = binned_tv(x[:, 0], axes[0], mass, bin_width=(axes[0][-1] - axes[0][0]) / 200,
                              n_boot=n_boot, seed=seed, groups=gr)
            else:
                per_axis = int(np.clip(round(math.sqrt(n / 5)), 8, 40))
                cells = max(1, int(round(max(a.size for a in axes) / per_axis)))
                b = binned_tv_2d(x, axes, mass, bin_cells=cells, n_boot=n_boot, seed=seed,
                                 groups=gr)
            v = b.value
            out["tv"] = {"value": v, "lower": b.lower, "upper": max(b.upper, v),
                         "method": b.method + "; interval = basic bootstrap joined with the "
                         "plug-in (biased up by about the floor); true TV >= binned TV",
                         "floor": b.floor, "floor_upper": b.floor_q95,
                         "below_floor": bool(b.lower <= b.floor_q95),
                         "details": {"ks_lower": b.ks_lower, "bin_width": b.bin_width,
                                     "law": post.description}}
    for name in ("w2", "sliced_w2"):
        if name not in metrics:
            continue
        if name == "w2" and d > 2:
            out[name] = {"value": None, "why": f"empirical W2 in d = {d} is biased by about "
                                               f"n^(-2/d): see sliced_w2"}
            continue
        if name == "sliced_w2" and d == 1 and "w2" in out:
            out[name] = {**out["w2"], "method": "in 1-D sliced W2 = W2 (directions +-1): "
                                                + out["w2"]["method"]}
            continue
        xs, ys, yfs, gs = x, y, yf, gr
        if name == "w2" and d > 1 and n > max_w2_points:
            xs, ys, yfs = x[:max_w2_points], y[:max_w2_points], yf[:max_w2_points]
            gs = None if gr is None else gr[:max_w2_points]
        if name == "w2":
            e = w2_distance(xs, ys, y_floor=yfs, n_boot=ot_boot, seed=seed, groups=gs)
        else:
            e = sliced_w2_distance(xs, ys, y_floor=yfs, n_boot=ot_boot, seed=seed, groups=gs,
                                   n_projections=n_projections)
        fl = e.details["floor"]
        v = e.value
        out[name] = {"value": v, "lower": min(e.lower, v), "upper": max(e.upper, v),
                     "method": e.method + "; " + e.details["interval"],
                     "floor": fl["value"], "floor_upper": fl["upper"],
                     "below_floor": bool(e.details["below_floor"]),
                     "details": {"n": xs.shape[0], "ci": e.details["ci"]}}
    if "marginal_ks" in metrics:
        U = _marginal_u(post, x)
        Uf = _marginal_u(post, yf)
        sU, sUf = _SortedColumns(U), _SortedColumns(Uf)
        boot = np.array([sU.mean_ks(_resample(members, n, rng)) for _ in range(n_boot)])
        fboot = np.array([sUf.mean_ks(rng.integers(0, n, n)) for _ in range(n_boot)])
        out["marginal_ks"] = _entry(
            _mean_ks(U), boot, "mean over coordinates of the Kolmogorov distance between the "
            f"method's empirical marginal and the exact marginal CDF; {n_boot} bootstrap "
            "resamples", _mean_ks(Uf), fboot, {"coordinates": d}, biased_up=True)
    if "mmse_gap" in metrics:
        G = n if members is None else len(members)
        val, boot = _mmse_boot(post, x, members, rng.integers(0, G, (n_boot, G)))
        fval, fboot = _mmse_boot(post, yf, None, rng.integers(0, n, (n_boot, n)))
        out["mmse_gap"] = _entry(val, boot, "||mean - E_post||^2 / tr Cov_post, minus the "
                                 "variance of the sample mean (group means for correlated "
                                 f"outputs); {n_boot} bootstrap resamples", fval, fboot,
                                 {"posterior_trace_cov": post.total_var()})
    if "coverage_error" in metrics:
        st9, st5 = _coverage(post, 0.9), _coverage(post, 0.5)
        e9, m9, pe9, pi9 = st9(x, True)
        e5, m5, pe5, pi5 = st5(x, True)
        on_x = st9.of_rows(x)
        both = np.array([on_x(_resample(members, n, rng)) for _ in range(n_boot)])
        boot = both[:, 0]
        mlo, mhi = np.quantile(both[:, 1], [0.025, 0.975])
        on_yf = st9.of_rows(yf)
        fboot = np.array([on_yf(rng.integers(0, n, n))[0] for _ in range(n_boot)])
        out["coverage_error"] = _entry(
            e9, boot, "mean over coordinates of |exact posterior mass of the method's central "
            f"0.9-interval - 0.9|; {n_boot} bootstrap resamples", st9(yf), fboot,
            {"mass_of_method_interval_90": m9,
             "mass_90_interval": [float(min(mlo, m9)), float(max(mhi, m9))],
             "mass_of_method_interval_50": m5,
             "coverage_error_50": e5, "method_fraction_in_posterior_interval_90": pi9,
             "posterior_interval_error_90": pe9, "method_fraction_in_posterior_interval_50": pi5,
             "posterior_interval_error_50": pe5}, biased_up=True)
    if "mode_weight_error" in metrics:
        stat, fstat, G, K = _modes(post, x, yf)
        val = stat(np.arange(n))
        boot = np.array([stat(_resample(members, n, rng)) for _ in range(n_boot)])
        fb = np.array([fstat(rng.integers(0, n, n)) for _ in range(n_boot)])
        out["mode_weight_error"] = _entry(
            val, boot, "1/2 sum_k |mean responsibility of component k - exact posterior weight|"
            + (f", averaged over {G} coordinates" if G > 1 else "")
            + f"; {n_boot} bootstrap resamples", fstat(np.arange(n)), fb,
            {"components": K, "groups_of_components": G}, biased_up=True)
    return out
