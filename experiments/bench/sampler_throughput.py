"""Benchmark: sampling throughput of our ``li-sde`` sampler against a plain loop over the
``diffusers`` DDPMScheduler, both driven by the same exact score of the 8-component
full-covariance ``gmm`` preset.

    python -m experiments.bench.sampler_throughput [--device cpu|cuda] [--n N] [--T T] [--d 64]

Ours: ``theory.samplers.run_sampler(sampler_rule("li-sde", li_schedule(T)), score, n, d)``
with ``score = AnalyticScore(make_prior("gmm", d, seed=0), li_schedule(T))``.

Baseline (what a user of ``diffusers`` would write): ``DDPMScheduler(num_train_timesteps=T,
trained_betas=li_schedule(T).beta_steps, clip_sample=False)`` (so both run the same
schedule; clipping x0_hat to [-1, 1], on by default in diffusers, would distort a prior
whose means are of size 2 and is turned off), ``set_timesteps(T)``, and for each timestep

    eps_hat = -sqrt(1 - abar_t) * score(x, t),   x = scheduler.step(eps_hat, k, x, generator=g).prev_sample

with the user's own batched Cholesky score of the same mixture (``--baseline-score cholesky``,
the default: :class:`CholeskyScore`, per step the inverse Cholesky factors of the marginal
covariances, two batched GEMMs and a softmax), or with the same
:class:`AnalyticScore` (``--baseline-score analytic``: then only the loops differ). Index
convention: diffusers timesteps
are 0-based, ours 1-based, so diffusers timestep ``k`` is our step ``t = k + 1``. Our
sampler runs ``t = T..2`` and returns ``Y_1``; the baseline runs ``k = T-1..1`` (our
``t = T..2``) and stops at the sample of diffusers timestep 0 = our step 1: both make
``T - 1`` score evaluations and return a sample at the same noise level (a user's loop
would also take diffusers' last step ``k = 0``, a noiseless Tweedie step at
``1 - abar_1 = T^-2``; it is left out so that both do the same work). Throughput is
``n * (T - 1) / seconds`` (sample-steps per second).

Protocol: both run on the same device, in float64, from ``Y_T ~ N(0, I)``. One warm-up run
each (it also builds and caches the ``T`` noised marginals of the score; its time is
printed as "cold"), then timed runs interleaved (ours, baseline, ours, ...) with
``time.perf_counter`` (``torch.cuda.synchronize`` around each on CUDA): best of 3 when a
warm-up run took under ``--short`` seconds, else a single timed run (``--repeats``
overrides). On CPU torch runs on one thread unless ``--threads`` says otherwise (on a
shared 2-core machine, two threads competing with other processes made single score
evaluations scatter between 40 and 360 ms; one thread is steady).

Sanity checks (printed):

* law: the two samplers differ (li-sde adds noise of variance ``(1 - alpha_t)/alpha_t``,
  DDPM the posterior variance ``(1 - alpha_t)(1 - abar_{t-1})/(1 - abar_t)``; same drift),
  so only rough agreement is expected. From the last timed run of each (independent
  seeds) the script compares the per-coordinate means (largest |difference| / its standard
  error over the d coordinates, and the norm of the mean difference), the mean squared norm
  ``E||Y_1||^2`` (difference in standard errors), and the share of samples nearest (largest
  responsibility under q_1) each mixture component; it also prints the exact q_1 values.
* index convention: our ``ddpm`` rule (Ho's posterior variance) is the same map as the
  diffusers step, and both draw their noise from the generator in the same order, so with
  the same seed the two paths must agree up to the float32 rounding of diffusers' schedule
  arrays (diffusers stores betas and alphas_cumprod in float32). The check is run twice:
  with the stock scheduler, and with a copy whose ``betas``/``alphas``/``alphas_cumprod``
  are replaced by our float64 arrays, where agreement must be to roundoff. (At T = 100,
  n = 256: about 2e-3 and 5e-13; reading the score at ``t = k`` instead of ``k + 1`` gives
  about 9.)

``diffusers`` is an optional dependency (``pip install diffusers``); without it the script
exits with status 2.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from theory.priors import make_prior
from theory.samplers import AnalyticScore, run_sampler, sampler_rule
from theory.schedules import li_schedule

SEED = 0


def _import_ddpm_scheduler():
    try:
        from diffusers import DDPMScheduler
    except ImportError as exc:
        print(f"bench_sampler_throughput: diffusers is not installed ({exc}); "
              "run `pip install diffusers`", file=sys.stderr)
        sys.exit(2)
    return DDPMScheduler


def make_ddpm_scheduler(DDPMScheduler, schedule):
    T = schedule.T
    sch = DDPMScheduler(num_train_timesteps=T, trained_betas=schedule.beta_steps,
                        clip_sample=False, prediction_type="epsilon", variance_type="fixed_small")
    sch.set_timesteps(T)
    ks = sch.timesteps.cpu().numpy()
    if not np.array_equal(ks, np.arange(T)[::-1]):
        raise RuntimeError(f"unexpected diffusers timesteps {ks[:5]}...; expected T-1..0")
    return sch


class CholeskyScore:
    r"""The exact score of a Gaussian mixture as a performance-aware user would write it from
    the textbook formula: at step t the marginal covariances :math:`C_k = \bar\alpha_t\Sigma_k
    + (1 - \bar\alpha_t) I` and means :math:`\sqrt{\bar\alpha_t}\mu_k`, their Cholesky factors
    :math:`L_k` and inverse factors :math:`L_k^{-1}` (cached per t), then for a batch two
    batched GEMMs per call, :math:`z_k = L_k^{-1}(x - m_k)` and :math:`u_k = L_k^{-\top} z_k =
    C_k^{-1}(x - m_k)`, :math:`\log w_k = \log\pi_k - \tfrac12|z_k|^2 - \log\det L_k`, a
    softmax over k and :math:`s = -\sum_k r_k u_k`. Written independently of
    :mod:`theory.priors` (shares only the mixture's parameters)."""

    def __init__(self, weights, means, covs, schedule):
        self.logw, self.means, self.covs = torch.log(weights), means, covs
        self.abar = schedule.alpha_bar
        self._cache = {}

    def _factors(self, t):
        if t not in self._cache:
            ab = float(self.abar[t])
            eye = torch.eye(self.covs.shape[-1], dtype=self.covs.dtype, device=self.covs.device)
            L = torch.linalg.cholesky(ab * self.covs + (1 - ab) * eye)
            Linv = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)
            self._cache[t] = (Linv, math.sqrt(ab) * self.means,
                              torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1))
        return self._cache[t]

    def __call__(self, x, t):
        Linv, m, logdet = self._factors(int(t))
        diff = x[None] - m[:, None, :]                                   # (K, n, d)
        z = diff @ Linv.transpose(1, 2)                                  # rows L^{-1}(x - m)
        u = z @ Linv                                                     # rows C^{-1}(x - m)
        logc = self.logw[:, None] - 0.5 * (z * z).sum(2) - logdet[:, None]   # (K, n)
        r = torch.softmax(logc, dim=0)
        return -(r[:, :, None] * u).sum(0)


def run_diffusers(scheduler, score, sqrt_omab, n, dim, *, generator, device, dtype=torch.float64):
    """The baseline loop: diffusers timesteps k = T-1..1 (our t = k + 1 = T..2)."""
    x = torch.randn(n, dim, generator=generator, dtype=dtype, device=device)
    for k in scheduler.timesteps[:-1]:
        t = int(k) + 1
        eps_hat = -sqrt_omab[t] * score(x, t)
        x = scheduler.step(eps_hat, k, x, generator=generator).prev_sample
    return x


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def law_summary(y: torch.Tensor, q1):
    """Per-coordinate means and their SEs, mean squared norm and its SE, nearest-component shares."""
    y = y.to(torch.float64)
    n = y.shape[0]
    mean = y.mean(0)
    se_mean = y.std(0, unbiased=True) / math.sqrt(n)
    sq = (y ** 2).sum(1)
    resp = q1.responsibilities(y.to(q1.device))
    share = torch.bincount(resp.argmax(1), minlength=q1.n_components).to(torch.float64) / n
    return {"mean": mean.cpu(), "se_mean": se_mean.cpu(), "msq": float(sq.mean()),
            "se_msq": float(sq.std(unbiased=True) / math.sqrt(n)), "share": share.cpu()}


def exact_q1(q1):
    w, m, C = q1.weights, q1.means, q1.covs
    mean = (w[:, None] * m).sum(0)
    msq = float((w * ((m ** 2).sum(1) + torch.diagonal(C, dim1=-2, dim2=-1).sum(-1))).sum())
    return mean.cpu(), msq


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--n", type=int, default=1024, help="samples per run (default 1024)")
    ap.add_argument("--T", type=int, default=100, help="schedule steps (default 100)")
    ap.add_argument("--d", type=int, default=64, help="dimension (default 64)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed runs per method (default: 3 if a warm-up run took under "
                         "--short seconds, else 1)")
    ap.add_argument("--short", type=float, default=10.0,
                    help="a run shorter than this many seconds counts as short (default 10)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on a shared 2-core machine two "
                         "threads oversubscribe and their timings scatter by 10x; 0 keeps "
                         "torch's own choice)")
    ap.add_argument("--baseline-score", default="cholesky", choices=["cholesky", "analytic"],
                    help="score of the diffusers loop: the user's batched Cholesky score "
                         "(default) or our AnalyticScore")
    ap.add_argument("--check-n", type=int, default=256,
                    help="samples for the same-seed index-convention check (0: skip)")
    args = ap.parse_args(argv)

    DDPMScheduler = _import_ddpm_scheduler()
    if args.n < 2 or args.T < 2 or args.d < 1:
        ap.error("need n >= 2, T >= 2, d >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_sampler_throughput: --device cuda asked but CUDA is not available",
              file=sys.stderr)
        sys.exit(2)
    if args.threads < 0:
        ap.error("--threads must be >= 0")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n, T, d = args.n, args.T, args.d
    steps = T - 1

    schedule = li_schedule(T)
    prior = make_prior("gmm", d, seed=0, device=device)
    rule = sampler_rule("li-sde", schedule)
    sqrt_omab = np.sqrt(schedule.one_minus_alpha_bar)
    scheduler = make_ddpm_scheduler(DDPMScheduler, schedule)
    # one score object per method, so that each cold (warm-up) run builds its own marginals
    score_ours = AnalyticScore(prior, schedule)
    score_base = (CholeskyScore(prior.weights, prior.means, prior.covs, schedule)
                  if args.baseline_score == "cholesky" else AnalyticScore(prior, schedule))
    ref = AnalyticScore(prior, schedule)
    xs = torch.randn(64, d, generator=torch.Generator(device=device).manual_seed(5),
                     dtype=torch.float64, device=device)
    score_err = max(float((score_base(xs, t) - ref(xs, t)).abs().max()
                          / ref(xs, t).abs().max()) for t in (2, T // 2, T))

    def gen(seed):
        return torch.Generator(device=device).manual_seed(seed)

    def ours(seed):
        return run_sampler(rule, score_ours, n, d, generator=gen(seed), device=device)

    def base(seed):
        return run_diffusers(scheduler, score_base, sqrt_omab, n, d, generator=gen(seed),
                             device=device)

    import diffusers
    print(f"bench_sampler_throughput: li-sde (ours) vs diffusers {diffusers.__version__} "
          f"DDPMScheduler loop, same exact gmm score")
    dev_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"cpu, {torch.get_num_threads()} torch threads")
    print(f"  prior gmm (K=8, full covariances, seed 0), d={d}; schedule li, T={T} "
          f"({steps} score evaluations per sample); n={n}; float64; device {dev_name}; "
          f"torch {torch.__version__}")
    print(f"  baseline score: {args.baseline_score} (largest relative difference from ours at "
          f"t = 2, T/2, T: {score_err:.1e})")

    cold_o, _ = _timed(lambda: ours(SEED + 100), device)
    cold_b, _ = _timed(lambda: base(SEED + 101), device)
    reps = args.repeats if args.repeats is not None else (
        3 if max(cold_o, cold_b) < args.short else 1)
    t_o, t_b = [], []
    y_o = y_b = None
    for _ in range(reps):
        dt, y_o = _timed(lambda: ours(SEED), device)
        t_o.append(dt)
        dt, y_b = _timed(lambda: base(SEED + 1), device)
        t_b.append(dt)
    best_o, best_b = min(t_o), min(t_b)
    thr_o, thr_b = n * steps / best_o, n * steps / best_b

    print(f"  timing: warm-up (cold) ours {cold_o:.2f} s, baseline {cold_b:.2f} s; "
          f"best of {reps} timed runs each (interleaved)")
    print(f"    ours     li-sde run_sampler : {best_o:8.3f} s   {thr_o:12.0f} sample-steps/s   "
          f"(runs: {', '.join(f'{x:.3f}' for x in t_o)})")
    print(f"    baseline diffusers DDPM loop: {best_b:8.3f} s   {thr_b:12.0f} sample-steps/s   "
          f"(runs: {', '.join(f'{x:.3f}' for x in t_b)})")
    print(f"    ratio ours/baseline (throughput): {thr_o / thr_b:.3f}")

    # the same two loops with a free score (s(x) = -x, the N(0, I) score): what the sampler
    # machinery itself costs, i.e. the part of the time where the two can differ
    def free_score(x, t):
        return -x

    f_o, f_b = [], []
    for _ in range(reps + 1):   # the first pair is a warm-up
        f_o.append(_timed(lambda: run_sampler(rule, free_score, n, d, generator=gen(SEED),
                                              device=device), device)[0])
        f_b.append(_timed(lambda: run_diffusers(scheduler, free_score, sqrt_omab, n, d,
                                                generator=gen(SEED + 1), device=device),
                          device)[0])
    fo, fb = min(f_o[1:]), min(f_b[1:])
    print(f"    loops alone (score replaced by s(x) = -x, best of {reps}): ours {fo:.3f} s "
          f"({n * steps / fo:.0f} sample-steps/s), baseline {fb:.3f} s "
          f"({n * steps / fb:.0f} sample-steps/s), throughput ratio ours/baseline {fb / fo:.2f}; "
          f"the exact gmm score "
          f"takes about {100 * (1 - fo / best_o):.0f}% of our time")

    # ---- law sanity check ------------------------------------------------------------
    q1 = prior.marginal(float(schedule.alpha_bar[1]))
    so, sb = law_summary(y_o, q1), law_summary(y_b, q1)
    ex_mean, ex_msq = exact_q1(q1)
    dm = so["mean"] - sb["mean"]
    se_dm = torch.sqrt(so["se_mean"] ** 2 + sb["se_mean"] ** 2)
    z = (dm / se_dm).abs()
    j = int(z.argmax())
    z_msq = (so["msq"] - sb["msq"]) / math.hypot(so["se_msq"], sb["se_msq"])
    print("  law check (final samples of the last timed runs, independent seeds; "
          "different samplers, so rough agreement only):")
    print(f"    per-coordinate means: max |ours - baseline| / SE over {d} coordinates = "
          f"{float(z[j]):.2f} (coordinate {j}: {float(so['mean'][j]):+.4f} +- "
          f"{float(so['se_mean'][j]):.4f} vs {float(sb['mean'][j]):+.4f} +- "
          f"{float(sb['se_mean'][j]):.4f}); ||mean diff|| = {float(dm.norm()):.4f} "
          f"(sqrt(sum SE^2) = {float(se_dm.norm()):.4f}); ||exact q_1 mean|| = "
          f"{float(ex_mean.norm()):.4f}, ||ours - exact|| = {float((so['mean'] - ex_mean).norm()):.4f}, "
          f"||baseline - exact|| = {float((sb['mean'] - ex_mean).norm()):.4f}")
    print(f"    mean squared norm E||Y_1||^2: ours {so['msq']:.3f} +- {so['se_msq']:.3f}, "
          f"baseline {sb['msq']:.3f} +- {sb['se_msq']:.3f} (difference {z_msq:+.2f} SE); "
          f"exact q_1 {ex_msq:.3f}")
    K = q1.n_components
    se_share = math.sqrt((1 / K) * (1 - 1 / K) / n)
    print(f"    nearest-component shares (exact {1 / K:.3f} each, SE {se_share:.3f}): "
          f"ours [{' '.join(f'{v:.3f}' for v in so['share'].tolist())}], "
          f"baseline [{' '.join(f'{v:.3f}' for v in sb['share'].tolist())}]")

    # ---- index-convention check: our ddpm rule == diffusers step, same seed -----------
    if args.check_n > 0:
        m = int(args.check_n)
        ddpm = sampler_rule("ddpm", schedule)
        y1 = run_sampler(ddpm, score_ours, m, d, generator=gen(SEED + 7), device=device)
        y2 = run_diffusers(scheduler, score_base, sqrt_omab, m, d, generator=gen(SEED + 7),
                           device=device)
        sch64 = make_ddpm_scheduler(DDPMScheduler, schedule)
        sch64.betas = torch.tensor(schedule.beta_steps, dtype=torch.float64)
        sch64.alphas = 1.0 - sch64.betas
        sch64.alphas_cumprod = torch.tensor(schedule.alpha_bar[1:], dtype=torch.float64)
        sch64.one = torch.tensor(1.0, dtype=torch.float64)
        y3 = run_diffusers(sch64, score_base, sqrt_omab, m, d, generator=gen(SEED + 7),
                           device=device)
        err32 = float((y1 - y2).abs().max())
        err64 = float((y1 - y3).abs().max())
        print(f"  index-convention check (n={m}, same seed): our 'ddpm' rule vs the diffusers "
              f"loop, max |difference| = {err32:.2e} with diffusers' float32 schedule arrays, "
              f"{err64:.2e} with them replaced by our float64 ones "
              f"(max |Y_1| = {float(y1.abs().max()):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
