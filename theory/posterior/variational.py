r"""Optimisation-based methods: RED-diff and DMPlug (THEORY.md section 7). Their outputs are
point estimates (each run converges towards a mode or the MAP): their law is not the
posterior, and the metrics say so.

* **RED-diff** (Mardani, Song, Kautz, Vahdat, ICLR 2024, arXiv:2305.04391; official code
  github.com/NVlabs/RED-diff ``algos/reddiff.py``): a point :math:`\mu` (init :math:`A^+y`),
  for t = T..1 one Adam step (lr 0.1, betas (0.9, 0.99)) on

  .. math::
      \frac{1}{2m}\mathcal L(\mu) + \frac{\lambda_t}{d}\,\mathrm{sg}[\hat\varepsilon(x_t) - \varepsilon]^\top\mu,
      \qquad x_t = \sqrt{\bar\alpha_t}(\mu + \sigma_{x_0}\xi) + \sqrt{1-\bar\alpha_t}\,\varepsilon,
      \quad \lambda_t = \lambda\sqrt{1-\bar\alpha_t}/\sqrt{\bar\alpha_t},

  :math:`\mathcal L` the likelihood's residual loss (:math:`\|y - A\mu\|^2` for the Gaussian
  model), :math:`\lambda = 0.25`, :math:`\sigma_{x_0} = 10^{-4}`; each term averaged over its
  entries (m measurements, d coordinates) as in the official code (THEORY.md writes the sum
  form; they agree when m = d, and Adam is invariant to a common factor). The gradient is
  analytic: no autograd. Output :math:`\mu`. NFE = T.
* **DMPlug** (Wang, Zhang, Li, Wan, Chen, Sun, NeurIPS 2024, arXiv:2405.16749; official code
  github.com/sun-umn/DMPlug; seed 000): :math:`x = R(z)`, R the deterministic DDIM map in
  ``ddim_steps`` = 3 steps (diffusers' leading spacing of the 1000-step linear schedule:
  timesteps 666, 333, 0, then :math:`\bar\alpha = 1`), minimise
  :math:`\frac1m\mathcal L(R(z))` over z from :math:`z \sim N(0, I)` by Adam (lr 1e-2),
  back-propagating through R with the analytic score Jacobian
  (:math:`\partial x_{k+1}/\partial x_k = c_1 I + c_2\nabla s`, symmetric). NFE counts the 3
  score evaluations of each forward pass; the backward pass (3 Jacobian-vector products,
  about as costly again with a network) is reported as ``jvp_calls``.
  ``stopping="fixed"``: ``iterations`` Adam steps (official: 5000 for SR / inpainting), output
  the last forward pass :math:`R(z)`;
  ``stopping="es-wmv"``: ES-WMV (Wang et al., "Early stopping for deep image prior",
  TMLR 2023; seed 000 Algorithm 3): push :math:`R(z)` into a queue of the last W iterates,
  :math:`\mathrm{VAR} = \frac1W\sum_w\|x_w - \bar x\|^2/d`, keep the iterate at the smallest
  VAR, stop when it has not improved for P iterations (W = 100, P = 1000: the DIP code's
  defaults). When the budget allows fewer than ``iterations`` steps, ``iterations``, W and P
  are scaled by (budget / 3) / iterations, and the notes say so.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..schedules import linear_schedule
from .interface import Knob, PosteriorSampler

__all__ = ["REDDiff", "DMPlug", "Adam", "ESWMV"]

DTYPE = torch.float64


class Adam:
    """Elementwise Adam (Kingma & Ba 2015), the update of ``torch.optim.Adam`` without weight
    decay, on a plain tensor with a given gradient (every row an independent problem)."""

    def __init__(self, shape_like: torch.Tensor, lr: float, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        self.m = torch.zeros_like(shape_like)
        self.v = torch.zeros_like(shape_like)
        self.k = 0

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        self.k += 1
        self.m = self.b1 * self.m + (1 - self.b1) * grad
        self.v = self.b2 * self.v + (1 - self.b2) * grad * grad
        mh = self.m / (1 - self.b1 ** self.k)
        vh = self.v / (1 - self.b2 ** self.k)
        return x - self.lr * mh / (vh.sqrt() + self.eps)


class ESWMV:
    r"""Early stopping by windowed moving variance (ES-WMV; Wang et al., TMLR 2023; seed 000
    Algorithm 3), for n independent runs at once.

    :meth:`push` takes the current iterates x (n, d); once W iterates are queued,
    :math:`\mathrm{VAR} = \frac1W\sum_w\|x_w - \bar x\|^2/d` per run; a new minimum records
    the pushed iterate as the run's ``best``; a run stops (``active`` False, ``stopped_at`` =
    iterations pushed) when its minimum has not improved for ``patience`` pushes."""

    def __init__(self, n: int, d: int, window: int, patience: int, device=None):
        self.W, self.P, self.d = int(window), int(patience), int(d)
        self.ring = torch.zeros(self.W, n, d, dtype=DTYPE, device=device)
        self.var_min = torch.full((n,), math.inf, dtype=DTYPE, device=device)
        self.since = torch.zeros(n, dtype=torch.long, device=device)
        self.active = torch.ones(n, dtype=torch.bool, device=device)
        self.best = torch.zeros(n, d, dtype=DTYPE, device=device)
        self.stopped_at = torch.full((n,), -1, dtype=torch.long, device=device)
        self.pushed = 0

    def push(self, x: torch.Tensor) -> torch.Tensor:
        """Queue the iterates; returns the mask of runs still active."""
        self.ring[self.pushed % self.W] = x
        self.pushed += 1
        if self.pushed < self.W:
            return self.active
        var = ((self.ring - self.ring.mean(0)) ** 2).sum(-1).mean(0) / self.d
        better = self.active & (var < self.var_min)
        self.var_min = torch.where(better, var, self.var_min)
        self.best[better] = x[better]
        self.since = torch.where(better, torch.zeros_like(self.since), self.since + 1)
        stop = self.active & (self.since >= self.P)
        self.stopped_at[stop] = self.pushed
        self.active &= ~stop
        return self.active


def _pinv_init(lik, n, d, device):
    x = torch.linalg.pinv(lik.A) @ lik.y
    return x.to(device)[None].expand(n, d).clone()


class REDDiff(PosteriorSampler):
    """RED-diff (Mardani et al. 2024), module docstring."""

    name = "red-diff"
    family = "variational"
    reference = "Mardani, Song, Kautz, Vahdat, ICLR 2024, arXiv:2305.04391 (official code NVlabs/RED-diff)"
    point_estimate = True
    KNOBS = {"lam": Knob(0.25, "nonnegative", "lambda of lambda_t = lambda sqrt(1-abar)/sqrt(abar) "
                                               "(official grad_term_weight 0.25)"),
             "lr": Knob(0.1, "positive", "Adam learning rate (official 0.1)"),
             "sigma_x0": Knob(1e-4, "nonnegative", "noise on mu before diffusing (official 1e-4)"),
             "init": Knob("pinv", "choice", "start: pinv (A^+ y, official), zero, noise "
                                            "(N(0, I))", ("pinv", "zero", "noise"))}

    def _sample(self, prior, lik, nfe, n, generator, device):
        d, m = prior.dim, lik.A.shape[0]
        sched = linear_schedule(nfe)
        ab, om = sched.alpha_bar, sched.one_minus_alpha_bar
        if self.knobs["init"] == "pinv":
            mu = _pinv_init(lik, n, d, device)
        elif self.knobs["init"] == "zero":
            mu = torch.zeros(n, d, dtype=DTYPE, device=device)
        else:
            mu = torch.randn(n, d, generator=generator, dtype=DTYPE, device=device)
        opt = Adam(mu, self.knobs["lr"], betas=(0.9, 0.99))
        for t in range(sched.T, 0, -1):
            a = float(ab[t])
            xi = torch.randn(mu.shape, generator=generator, dtype=DTYPE, device=device)
            eps = torch.randn(mu.shape, generator=generator, dtype=DTYPE, device=device)
            x0 = mu + self.knobs["sigma_x0"] * xi
            xt = math.sqrt(a) * x0 + math.sqrt(float(om[t])) * eps
            eps_hat = -math.sqrt(float(om[t])) * prior.marginal(a).score(xt)
            lam_t = self.knobs["lam"] * math.sqrt(float(om[t]) / a)
            grad = lik.dps_loss_grad(x0) / (2 * m) + lam_t * (eps_hat - eps) / d
            mu = opt.step(mu, grad)
        return mu, {"nfe": sched.T, "notes": ["point estimate (a variational mean), not a "
                                              "posterior sample"], "extra": {"jvp_calls": 0}}


def _dmplug_levels(steps: int):
    """abar levels of the deterministic DDIM map R: diffusers' leading spacing of the 1000-step
    linear schedule (timesteps k*(1000 // steps), descending), then abar = 1."""
    full = linear_schedule(1000).alpha_bar          # index = diffusers timestep + 1
    ratio = 1000 // steps
    ts = (np.arange(steps) * ratio)[::-1]
    return [float(full[t + 1]) for t in ts] + [1.0]


class DMPlug(PosteriorSampler):
    """DMPlug with ES-WMV or a fixed iteration count (module docstring)."""

    name = "dmplug"
    family = "variational"
    reference = ("Wang, Zhang, Li, Wan, Chen, Sun, NeurIPS 2024, arXiv:2405.16749 (code "
                 "sun-umn/DMPlug); ES-WMV: Wang, Li, Zhuang, Chen, Liang, Sun, TMLR 2023")
    point_estimate = True
    KNOBS = {"lr": Knob(1e-2, "positive", "Adam learning rate on z (official 1e-2)"),
             "ddim_steps": Knob(3, "int", "DDIM steps of R (official 3)"),
             "iterations": Knob(5000, "int", "Adam steps (official 5000 for SR / inpainting); "
                                             "scaled down to the budget"),
             "stopping": Knob("es-wmv", "choice", "es-wmv (early stopping by windowed moving "
                                                  "variance) or fixed", ("es-wmv", "fixed")),
             "window": Knob(100, "int", "ES-WMV window W (DIP code default 100)"),
             "patience": Knob(1000, "int", "ES-WMV patience P (DIP code default 1000)")}

    def min_nfe(self):
        return self.knobs["ddim_steps"]

    def _forward(self, prior, z, levels):
        """R(z) and the per-step (x, c2) needed by the backward pass."""
        x, tape = z, []
        for a, a_next in zip(levels[:-1], levels[1:]):
            s = prior.marginal(a).score(x)
            c1 = math.sqrt(a_next / a)
            c2 = math.sqrt(a_next) * (1 - a) / math.sqrt(a) - math.sqrt((1 - a_next) * (1 - a))
            tape.append((x, a, c1, c2))
            x = c1 * x + c2 * s
        return x, tape

    @staticmethod
    def _backward(prior, tape, v):
        for x, a, c1, c2 in reversed(tape):
            v = c1 * v + c2 * prior.marginal(a).score_jacobian_vector(x, v)
        return v

    def _sample(self, prior, lik, nfe, n, generator, device):
        k = self.knobs
        per_iter = k["ddim_steps"]
        levels = _dmplug_levels(per_iter)
        i_max = nfe // per_iter
        iters, W, P, notes = k["iterations"], k["window"], k["patience"], []
        if i_max < iters:
            f = i_max / iters
            iters = i_max
            W, P = max(2, round(W * f)), max(1, round(P * f))
            notes.append(f"budget {nfe} allows {i_max} of the default {k['iterations']} "
                         f"iterations: iterations, window and patience scaled by {f:.4g}")
        es = k["stopping"] == "es-wmv"
        d, m = prior.dim, lik.A.shape[0]
        z = torch.randn(n, d, generator=generator, dtype=DTYPE, device=device)
        opt = Adam(z, k["lr"])
        stopper = ESWMV(n, d, W, P, device) if es else None
        x = z
        for it in range(iters):
            x, tape = self._forward(prior, z, levels)
            if es and not stopper.push(x).any():
                break
            grad = self._backward(prior, tape, lik.dps_loss_grad(x) / m)
            z = opt.step(z, grad)
        if es:
            never = torch.isinf(stopper.var_min)
            out = torch.where(never[:, None], x, stopper.best)
            stop_at = torch.where(stopper.stopped_at > 0, stopper.stopped_at,
                                  torch.full_like(stopper.stopped_at, stopper.pushed))
            nfe_used = float((stop_at.to(DTYPE) * per_iter).mean())
            extra_stop = float((stopper.stopped_at > 0).to(DTYPE).mean())
            if never.any():
                notes.append(f"{int(never.sum())} runs shorter than the window: last iterate")
        else:
            out, nfe_used, extra_stop = x, iters * per_iter, 0.0    # R of the last iterate
        notes.append("point estimate (an optimiser through the sampler), not a posterior sample")
        return out, {"nfe": float(nfe_used), "notes": notes,
                     "knobs": {"iterations": iters, "window": W, "patience": P},
                     "extra": {"jvp_calls": float(nfe_used), "stopped_early": extra_stop}}
