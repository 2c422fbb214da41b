r"""Sequential Monte Carlo posterior samplers: TDS and MCGdiff (THEORY.md section 7). Both are
consistent as the number of particles K grows (for the discretised reverse model: the DDPM /
DDIM chain with the exact prior score on T = NFE steps of the linear schedule). Each run of K
particles spends K score evaluations per step and returns K correlated outputs (resampled
by the final weights); NFE per output = T, ``particles`` = K, and ``groups`` gives each
output's run so that intervals resample whole runs.

* **TDS** (Wu, Trippe, Naesseth, Blei, Cunningham, NeurIPS 2023, arXiv:2306.17775; official
  code github.com/blt2114/twisted_diffusion_sampler): twisting functions
  :math:`\tilde p_t(y \mid x_t) = p_{\tau_t^2}(y \mid \hat x_0(x_t))`, the likelihood at
  Tweedie's mean with its noise variance inflated by :math:`\tau_t^2`
  (:func:`theory.posterior.tweedie.inflated`: :math:`N(y; A\hat x_0, (\sigma_y^2 + \tau_t^2)I)`
  for the Gaussian model). The official code's choices (``pred_xstart_var_type``):
  ``twist_var="ve"`` :math:`\tau_t^2 = (1-\bar\alpha_t)/\bar\alpha_t` (type 1, default here),
  ``"pigdm"`` :math:`1-\bar\alpha_t` (type 2), ``"harmonic"``
  :math:`\bar\sigma_t^2\tau^2/(\bar\sigma_t^2 + \tau^2)` with ``tau2`` (type 6; the image runs
  use :math:`\tau^2 = 0.12`). Proposal: the DDPM ancestral step with :math:`\hat x_0` replaced
  by :math:`\hat x_0 + \frac{1-\bar\alpha_t}{\sqrt{\bar\alpha_t}}\nabla_{x_t}\log\tilde p_t`;
  weight :math:`p(x_{t-1} \mid x_t)\tilde p_{t-1}(y \mid x_{t-1}) / (\tilde p_t(y \mid x_t)\,
  q(x_{t-1} \mid x_t))`, initial weight :math:`\tilde p_T(y \mid x_T)`; resampling
  (systematic, the official default) when the ESS falls below ``ess_threshold`` K; the output
  is :math:`x_0 = \hat x_0(x_1)` (the official ``use_mean_pred``) with the final weight
  :math:`p(y \mid x_0)/\tilde p_1(y \mid x_1)`.
* **MCGdiff** (Cardoso, Janati, Le Corff, Moulines, ICLR 2024, arXiv:2308.07983; Algorithm 1 as
  implemented in the official code github.com/gabrielvc/mcg_diff ``particle_filter.py``):
  linear-Gaussian y = Ax + sigma eps only. In the SVD coordinates
  :math:`\bar x = V^\top x`, :math:`\bar y = U^\top y = S\bar x_{1:m} + \sigma\varepsilon`, each
  observed coordinate i gets the time :math:`\tau_i` closest to
  :math:`(1-\bar\alpha_{\tau})/\bar\alpha_{\tau} = \sigma^2/s_i^2` (there
  :math:`\sqrt{\bar\alpha_\tau}\bar y_i/s_i` has the law of :math:`\bar x_{\tau}^i` given
  :math:`x_0`), :math:`\tilde y_i = \sqrt{\bar\alpha_{\tau_i}}\bar y_i/s_i`, and for
  :math:`t \ge \tau_i` the pseudo-likelihood
  :math:`g_t^i(x) = N(x^i; \sqrt{\bar\alpha_t/\bar\alpha_{\tau_i}}\tilde y_i,
  1 - (1-\kappa)\bar\alpha_t/\bar\alpha_{\tau_i})` (``kappa`` = the code's ``gaussian_var``,
  1e-4). Each step is the fully adapted particle filter of the DDIM(eta = 1) kernels
  :math:`N(m_t(x_t), c_t^2)`: weight :math:`\prod_{i \text{ active at } t-1}
  N(m_t^i; \text{centre}, c_t^2 + v_{t-1}^i) / \prod_{i \text{ active at } t} g_t^i(x_t^i)`,
  resample (multinomial, every step: the official choice), then sample the observed
  coordinates from the product kernel x pseudo-likelihood (the Kalman step) and the others
  from the kernel. After the step to t = 0 the weight
  :math:`p(y \mid x_0)/\prod_{i} g_{0}^i` (coordinates still active) turns the target into
  the posterior. Difference from the official code: it divides the first weight by
  :math:`g_T(x_T)` without having multiplied the initial particles by it; here the initial
  weight :math:`g_T(x_T)` is included, as the SMC identity requires.
"""
from __future__ import annotations

import math

import torch

from ..samplers import AnalyticScore
from ..schedules import linear_schedule
from .guided import ddim_coefficients
from .interface import Knob, PosteriorSampler, groups_for
from .tweedie import inflated, jac_t, tweedie

__all__ = ["TDS", "MCGdiff", "resample_indices", "ess"]

DTYPE = torch.float64
LOG_2PI = math.log(2 * math.pi)


def ess(logw: torch.Tensor) -> torch.Tensor:
    """Effective sample size per run of log weights (R, K)."""
    w = torch.softmax(logw, -1)
    return 1.0 / (w * w).sum(-1)


def resample_indices(logw: torch.Tensor, generator, scheme: str = "systematic") -> torch.Tensor:
    """Ancestor indices (R, K) in 0..K-1 per run, multinomial or systematic, from log weights
    (R, K)."""
    R, K = logw.shape
    w = torch.softmax(logw, -1)
    if scheme == "multinomial":
        return torch.multinomial(w, K, replacement=True, generator=generator)
    u = (torch.rand(R, 1, generator=generator, dtype=DTYPE, device=logw.device)
         + torch.arange(K, dtype=DTYPE, device=logw.device)[None]) / K
    cdf = torch.cumsum(w, -1)
    cdf[:, -1] = 1.0
    return torch.searchsorted(cdf, u).clamp_max(K - 1)


def _gather(x: torch.Tensor, idx: torch.Tensor, R: int, K: int) -> torch.Tensor:
    """Rows of x (R*K, ...) picked run by run by idx (R, K)."""
    shape = x.shape
    xr = x.reshape(R, K, *shape[1:])
    flat = idx.reshape(R, K, *([1] * (len(shape) - 1))).expand(R, K, *shape[1:])
    return torch.gather(xr, 1, flat).reshape(shape)


def _maybe_resample(logw, generator, scheme, threshold, tensors, R, K):
    """Resample the runs whose ESS < threshold K; returns (logw, tensors, n_resampled)."""
    need = ess(logw) < threshold * K - 1e-9
    if not need.any():
        return logw, tensors, 0
    idx = resample_indices(logw, generator, scheme)
    keep = torch.arange(K, device=logw.device)[None].expand(R, K)
    idx = torch.where(need[:, None], idx, keep)
    logw = torch.where(need[:, None], torch.zeros_like(logw), logw)
    return logw, [_gather(t, idx, R, K) for t in tensors], int(need.sum())


class _SMC(PosteriorSampler):
    family = "smc"

    def _runs(self, n):
        K = self.knobs["particles"]
        R = -(-n // K)
        return R, K

    def _finish(self, x, logw, R, K, n, generator, device, extra):
        idx = resample_indices(logw, generator, "multinomial")
        out = _gather(x, idx, R, K)[:n]
        extra["final_ess_mean"] = float(ess(logw).mean())
        return out, {"particles": K, "groups": groups_for(R, K, n, device), "extra": extra,
                     "notes": [f"{R} runs of {K} particles; outputs of a run are correlated"]}


class TDS(_SMC):
    """TDS (Wu et al. 2023), module docstring."""

    name = "tds"
    reference = ("Wu, Trippe, Naesseth, Blei, Cunningham, NeurIPS 2023, arXiv:2306.17775 "
                 "(official code blt2114/twisted_diffusion_sampler)")
    KNOBS = {"particles": Knob(16, "int", "particles K per run (official image config: 4)"),
             "twist_var": Knob("ve", "choice", "tau_t^2 of the twist: ve (1-abar)/abar "
                                               "(official type 1), pigdm 1-abar (type 2), "
                                               "harmonic (type 6)", ("ve", "pigdm", "harmonic")),
             "tau2": Knob(0.12, "positive", "tau^2 of the harmonic twist (official 0.12)"),
             "ess_threshold": Knob(0.5, "unit", "resample when ESS < threshold K (THEORY: 1/2)"),
             "resampling": Knob("systematic", "choice", "systematic (official) or multinomial",
                                ("systematic", "multinomial"))}

    def _tau2(self, abar):
        sb2 = (1 - abar) / abar
        kind = self.knobs["twist_var"]
        if kind == "ve":
            return sb2
        if kind == "pigdm":
            return 1 - abar
        t2 = self.knobs["tau2"]
        return sb2 * t2 / (sb2 + t2)

    def _twist(self, score, lik, x, t, abar):
        marg = score.marginal(t)
        s = marg.score(x)
        x0 = tweedie(x, s, abar)
        lk = inflated(lik, self._tau2(abar))
        return x0, lk.log_lik(x0), jac_t(marg, x, lk.grad(x0), abar)

    def _sample(self, prior, lik, nfe, n, generator, device):
        R, K = self._runs(n)
        N = R * K
        sched = linear_schedule(nfe)
        ab, om, be = sched.alpha_bar, sched.one_minus_alpha_bar, sched.beta
        score = AnalyticScore(prior, sched)
        x = torch.randn(N, prior.dim, generator=generator, dtype=DTYPE, device=device)
        x0, lp, g = self._twist(score, lik, x, sched.T, float(ab[sched.T]))
        logw = lp.reshape(R, K)
        n_res = 0
        for t in range(sched.T, 1, -1):
            logw, (x, x0, lp, g), r = _maybe_resample(
                logw, generator, self.knobs["resampling"], self.knobs["ess_threshold"],
                [x, x0, lp, g], R, K)
            n_res += r
            a = float(ab[t])
            c1 = math.sqrt(float(ab[t - 1])) * be[t] / om[t]
            c2 = math.sqrt(1 - be[t]) * om[t - 1] / om[t]
            var = be[t] * om[t - 1] / om[t]
            x0_tw = x0 + om[t] / math.sqrt(a) * g
            mean_q = c1 * x0_tw + c2 * x
            mean_p = c1 * x0 + c2 * x
            x_new = mean_q + math.sqrt(var) * torch.randn(x.shape, generator=generator,
                                                          dtype=DTYPE, device=device)
            log_ratio = (((x_new - mean_q) ** 2).sum(1) - ((x_new - mean_p) ** 2).sum(1)) / (2 * var)
            x0n, lpn, gn = self._twist(score, lik, x_new, t - 1, float(ab[t - 1]))
            logw = logw + (log_ratio + lpn - lp).reshape(R, K)
            x, x0, lp, g = x_new, x0n, lpn, gn
        logw = logw + (lik.log_lik(x0) - lp).reshape(R, K)
        return self._finish(x0, logw, R, K, n, generator, device,
                            {"jvp_calls": sched.T, "resampled_runs": n_res})


class MCGdiff(_SMC):
    """MCGdiff (Cardoso et al. 2024), module docstring."""

    name = "mcgdiff"
    reference = ("Cardoso, Janati, Le Corff, Moulines, ICLR 2024, arXiv:2308.07983 (official "
                 "code gabrielvc/mcg_diff)")
    linear_gaussian_only = True
    KNOBS = {"particles": Knob(64, "int", "particles K per run (official default config: 64)"),
             "kappa": Knob(1e-4, "positive", "kappa (the code's gaussian_var, default 1e-4)"),
             "eta": Knob(1.0, "unit", "DDIM eta of the kernels (official 1)"),
             "ess_threshold": Knob(1.0, "unit", "resample when ESS < threshold K (1: every "
                                                "step, official)"),
             "resampling": Knob("multinomial", "choice", "multinomial (official) or systematic",
                                ("multinomial", "systematic"))}

    def _sample(self, prior, lik, nfe, n, generator, device):
        R, K = self._runs(n)
        N = R * K
        d = prior.dim
        U, S, Vh = torch.linalg.svd(lik.A, full_matrices=True)
        m = S.shape[0]
        obs = torch.arange(m, device=device)
        ybar = lik.y @ U                                              # U^T y
        sig2 = lik.sigma ** 2
        sched = linear_schedule(nfe)
        T = sched.T
        ab = torch.as_tensor(sched.alpha_bar, dtype=DTYPE, device=device)
        a_c, b_c, c_c = ddim_coefficients(sched, self.knobs["eta"])
        dist = (sig2 * ab[None, 1:] - (1 - ab)[None, 1:] * S[:, None] ** 2).abs()
        tau = dist.argmin(1) + 1                                      # (m,) steps in 1..T
        ab_tau = ab[tau]
        ytil = ab_tau.sqrt() * ybar / S
        kappa = self.knobs["kappa"]
        score = AnalyticScore(prior, sched)

        def centre_var(t):
            r = ab[t] / ab_tau
            return r.sqrt() * ytil, 1 - (1 - kappa) * r

        def log_g(xb, t, act):                                         # sum over coords act
            if not act.any():
                return torch.zeros(xb.shape[0], dtype=DTYPE, device=device)
            c, v = centre_var(t)
            z = xb[:, obs[act]] - c[act]
            return -0.5 * (z * z / v[act] + torch.log(v[act]) + LOG_2PI).sum(1)

        xb = torch.randn(N, d, generator=generator, dtype=DTYPE, device=device)   # V^T x_T
        logw = log_g(xb, T, T >= tau).reshape(R, K)
        n_res = 0
        for t in range(T, 0, -1):
            x = xb @ Vh
            s = score.marginal(t).score(x)
            if t >= 2:
                mean = (float(a_c[t]) * x + float(b_c[t]) * s) @ Vh.T
                c = float(c_c[t])
            else:
                mean, c = tweedie(x, s, float(ab[1])) @ Vh.T, 0.0
            act_next = (t - 1) >= tau
            # coordinates pinned at t (tau_i = t) keep their last potential: not divided out
            incr = -log_g(xb, t, act_next)
            if act_next.any():
                cen, v = centre_var(t - 1)
                z = mean[:, obs[act_next]] - cen[act_next]
                tot = c * c + v[act_next]
                incr = incr - 0.5 * (z * z / tot + torch.log(tot) + LOG_2PI).sum(1)
            logw = logw + incr.reshape(R, K)
            logw, (mean,), r = _maybe_resample(logw, generator, self.knobs["resampling"],
                                               self.knobs["ess_threshold"], [mean], R, K)
            n_res += r
            z = torch.randn(N, d, generator=generator, dtype=DTYPE, device=device)
            xb = mean + c * z
            if act_next.any():
                i = obs[act_next]
                vv = v[act_next]
                gain = c * c / (c * c + vv)
                xb[:, i] = (gain * cen[act_next] + (1 - gain) * mean[:, i]
                            + torch.sqrt(vv * gain) * z[:, i])
        # the pins make the x_0-marginal prior x prod_i N(ytil_i; sqrt(abar_tau) xbar_0^i,
        # 1 - abar_tau + kappa); reweight to the true likelihood N(ybar_i; s_i xbar_0^i, sigma^2)
        x0o = xb[:, obs]
        true = -0.5 * ((ybar - S * x0o) ** 2).sum(1) / sig2
        vp = 1 - ab_tau + kappa
        pinned = -0.5 * (((ytil - ab_tau.sqrt() * x0o) ** 2) / vp).sum(1)
        logw = logw + (true - pinned).reshape(R, K)
        return self._finish(xb @ Vh, logw, R, K, n, generator, device,
                            {"jvp_calls": 0, "resampled_runs": n_res,
                             "tau_steps": [int(v) for v in tau]})
