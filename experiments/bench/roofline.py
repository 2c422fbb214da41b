"""Roofline benchmark: this machine's float64 GEMM rate and memory bandwidth, and in the same
run each hot path's achieved rate as a fraction of them; with ``--baseline DIR`` also the
speed-up of every path over another checkout (e.g. an older commit), measured interleaved.

    python -m experiments.bench.roofline [--baseline DIR] [--repeats 3] [--long]
                                         [--device cpu|cuda] [--threads 1] [--only a,b]

Every measurement runs in its own fresh process (cold caches: no memoised output law, no
cached marginal from an earlier measurement; one untimed warm-up on a tiny problem loads the
libraries), ``--repeats`` times, alternating between this tree and the baseline's; the best
(smallest) time counts. Times are wall-clock seconds; the processes also report CPU seconds
(``time.process_time``), and the ratios are printed for both: on a loaded shared machine the
CPU time is the steadier of the two. The script prints the machine's load average before and
after.

Hot paths (the public API only, so that an older checkout runs the same code):

* ``grid_step``: :func:`theory.laws.grid1d.grid_law_1d` of the bimodal prior, li-sde,
  T = 1000 (``--long``: 10^5), h = 0.01 (2001 nodes): seconds per step;
* ``tv_1d``: :func:`theory.distances.exact.exact_distance` (``tv``), bimodal d = 1, li-sde,
  T = 1000: both refinement levels, the quadrature and the interval (T = 10^5 with ``--long``:
  ``tv_1d_long``);
* ``product_tv``: the same at d = 100 for the ``gauss`` prior (100 distinct Gaussian factors:
  the characteristic-function path) and for ``bimodal`` (``product_tv_bimodal``);
* ``posterior_step``: one step of the DPnP grid chain, :class:`theory.posterior.grid1d.Grid1D`
  (bimodal prior, Gaussian likelihood sigma 0.5, y = 0.7, eta 0.3): ``laws`` over K = 20
  levels, per level;
* ``mixture_score``: ``GaussianMixture.score`` of the ``gmm`` preset (K = 8, d = 64) at a
  marginal, n = 4096;
* ``pushforward``: :func:`theory.laws.pushforward.sample_with_log_density`, gmm d = 64, li-ode,
  T = 100, n = 500 (``--long``: 2000): seconds per step;
* ``sampler``: :func:`theory.samplers.run_sampler`, li-sde with the exact gmm score, d = 64,
  n = 4096, T = 100: seconds per step;
* ``startup``: a tiny exact ``diffrates measure`` (``python -m experiments.cli.main measure
  --prior gauss|bimodal --d 1 --T 10 --json``) in a fresh process, median of 5 wall-clock
  runs, beside the import floor measured in the same run, interleaved: the interpreter alone
  and ``import numpy, scipy.special`` (all the gauss path needs) and ``+ scipy.ndimage``
  (the bimodal grid path). No rate: it is start-up, not arithmetic.

Rates. Each path's arithmetic is counted from its algorithm (the counts are in ``_work``; a
transcendental function counts 20 flops, an FFT of length n counts 2.5 n log2 n for a real
and 5 n log2 n for a complex transform) and divided by the time; the fraction of the machine's
GEMM rate and, from the bytes the path must move at least once, of its memory bandwidth, say
how far the path is from the machine's limit. These are models, not counters: the GEMM rate is
the roof for GEMM-shaped work only; elementwise and transcendental work (the grid step) cannot
reach it even when perfectly written.

``--device cuda`` (when a GPU is there) also measures the GEMM rate on it and runs the mixture
score and the sampler step on it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))

PATHS = ("startup", "grid_step", "tv_1d", "product_tv", "product_tv_bimodal", "posterior_step",
         "mixture_score", "pushforward", "sampler")
LONG_PATHS = ("tv_1d_long",)


# --------------------------------------------------------------------------------------
# the machine
# --------------------------------------------------------------------------------------

def gemm_rate(device="cpu", n=2048, repeats=5):
    """Best float64 GEMM rate (GFLOP/s by wall and by CPU time) of torch (and numpy on the
    CPU) on n x n matrices."""
    import torch
    out = {}
    a = torch.randn(n, n, dtype=torch.float64, device=device)
    b = torch.randn(n, n, dtype=torch.float64, device=device)
    fns = {"torch": lambda: (a @ b, _sync(device))}
    if device == "cpu":
        an, bn = a.numpy(), b.numpy()
        fns["numpy"] = lambda: an @ bn
    for key, fn in fns.items():
        _sync(device)
        w, c = _best_of(fn, repeats)
        out[key] = (2 * n ** 3 / w / 1e9, 2 * n ** 3 / c / 1e9)
    return out


def _best_of(fn, repeats):
    """Best wall and best CPU seconds of ``repeats`` calls."""
    bw = bc = math.inf
    for _ in range(repeats):
        _, w, c = _timed(fn)
        bw, bc = min(bw, w), min(bc, c)
    return bw, bc


def bandwidth(n=1 << 24, repeats=5):
    """Memory bandwidth (GB/s, by wall and by CPU time) of the triad ``a = b + s c`` on three float64 arrays of n
    entries (3 x 128 MB: far beyond every cache), counting 3 x 8 n bytes per pass."""
    import numpy as np
    b, c = np.random.rand(n), np.random.rand(n)
    a = np.empty(n)

    def triad():
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)
    # two passes as written: multiply (read c, write a), add (read a, b; write a)
    w, cpu = _best_of(triad, repeats)
    return 5 * 8 * n / w / 1e9, 5 * 8 * n / cpu / 1e9


def _sync(device):
    import torch
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------
# the hot paths (each runs in a fresh process: ``--one NAME``)
# --------------------------------------------------------------------------------------

def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _fft_flops(n, real=True):
    return (2.5 if real else 5.0) * n * math.log2(max(n, 2))


def _work(name, info):
    """(flops, bytes, unit) of one unit of a path's work, from its algorithm."""
    if name == "grid_step":
        # per node: two score evaluations (~25 flops + 1 exp each), inverse interpolation
        # (~10), Newton (~8), spline weights and evaluation (~25), the pulled-back density
        # (1 exp, 1 division), the logarithm after the blur; the spline filter (~6); per
        # step one real FFT pair of length ~1.2 N and the Gaussian multiplier
        N = info["nodes"]
        per_node = 2 * (25 + 20) + 10 + 8 + 25 + 20 + 1 + 20 + 6
        nfft = info.get("fft_len", int(1.2 * N))
        flops = N * per_node + 2 * _fft_flops(nfft) + 6 * nfft
        return flops, 8 * 2 * N, "step"                 # the density in and out
    if name in ("tv_1d", "tv_1d_long"):
        N, T = info["nodes"], info["T"]
        steps = (T - 1) * (1 + 0.5)                      # fine and coarse levels
        fine = _work("grid_step", {"nodes": N})[0]
        return steps * fine, 8 * 2 * N * steps, "TV"
    if name in ("product_tv", "product_tv_bimodal"):
        n = info["lattice"]
        # two levels: the inverse complex FFT of the lattice (and one per quadrature
        # factor), exp of the summed log transform, plus the evaluated CF entries (~40
        # flops each: complex log and division)
        per_level = _fft_flops(n, real=False) * (1 + info.get("quad_factors", 0)) + 25 * n \
            + 40 * info.get("cf_entries", 0)
        return 1.5 * per_level, 16 * n * 1.5, "TV"
    if name == "posterior_step":
        N, Nz = info["n_x"], info["n_z"]
        # the PCS and DDS blurs are direct convolutions with the Gaussian profile (Grid1D
        # keeps one profile of N + Nz - 1 values per eta): per blur N dot products of length
        # Nz (2 N Nz flops), reading the profile and the two vectors only
        return 4 * N * Nz, 2 * 8 * (2 * N + 2 * Nz), "step"
    if name == "mixture_score":
        n, d, K = info["n"], info["d"], info["K"]
        flops = 2 * n * d * K * d + 8 * n * K * d
        return flops, 8 * (2 * n * d + K * d * d), "call"
    if name == "pushforward":
        n, d, K = info["n"], info["d"], info["K"]
        # score GEMM, -sum r P (GEMM), W^T W (stacked products), Cholesky; the exactly
        # one-hot rows skip the last three, which the count ignores (it is the dense work)
        flops = 3 * 2 * n * d * K * d + n * d ** 3 / 3 + 12 * n * K * d
        return flops, 8 * n * d * d, "step"
    if name == "sampler":
        n, d, K = info["n"], info["d"], info["K"]
        flops = 2 * n * d * K * d + 8 * n * K * d + 30 * n * d     # score, update, noise
        return flops, 8 * 4 * n * d, "step"
    raise KeyError(name)


def run_one(name, device="cpu"):
    """Run one hot path once (after a tiny untimed warm-up) and return its record."""
    import numpy as np
    import torch
    from theory.priors import make_prior
    from theory.samplers import sampler_rule
    from theory.schedules import li_schedule

    rec = {"name": name, "device": device}
    if name == "grid_step":
        from theory.laws.grid1d import grid_law_1d
        from theory.mixture1d import Mixture1D
        mix = Mixture1D(np.array([0.5, 0.5]), np.array([-2.0, 2.0]), np.array([0.0625, 0.0625]))
        grid_law_1d(mix, sampler_rule("li-sde", li_schedule(20)), h=0.01)        # warm-up
        T = int(os.environ.get("ROOFLINE_T", 1000))
        rule = sampler_rule("li-sde", li_schedule(T))
        law, wall, cpu = _timed(lambda: grid_law_1d(mix, rule, h=0.01))
        steps = T - 1
        rec.update(wall=wall / steps, cpu=cpu / steps, nodes=int(law.x.size), T=T,
                   value=float(np.sum(law.dx * np.exp(law.logp) * law.x ** 2)))
    elif name in ("tv_1d", "tv_1d_long"):
        from theory.distances.exact import exact_distance
        T = 100_000 if name == "tv_1d_long" else 1000
        prior = make_prior("bimodal", 1)
        exact_distance(prior, sampler_rule("li-sde", li_schedule(20)), "tv")     # warm-up
        rule = sampler_rule("li-sde", li_schedule(T))
        est, wall, cpu = _timed(lambda: exact_distance(prior, rule, "tv"))
        rec.update(wall=wall, cpu=cpu, T=T, nodes=2001, value=est.value, lower=est.lower,
                   upper=est.upper, width=est.upper - est.lower)
    elif name in ("product_tv", "product_tv_bimodal"):
        from theory.distances.exact import exact_distance
        pname = "gauss" if name == "product_tv" else "bimodal"
        prior = make_prior(pname, 100)
        exact_distance(make_prior(pname, 2), sampler_rule("li-sde", li_schedule(20)), "tv")
        T = 1000
        rule = sampler_rule("li-sde", li_schedule(T))
        if pname == "bimodal":       # the 1-D law is shared with tv_1d: time the product only
            from theory.laws.factors import exact_factors
            exact_factors(prior, rule, 0.5), exact_factors(prior, rule, 1.0)
        est, wall, cpu = _timed(lambda: exact_distance(prior, rule, "tv"))
        cf_entries = 0
        if pname == "gauss":         # frequencies the CF blocks evaluate (at most the lattice)
            cf_entries = 100 * 2048
        rec.update(wall=wall, cpu=cpu, value=est.value, lower=est.lower, upper=est.upper,
                   width=est.upper - est.lower,
                   lattice=int(est.details.get("lattice_size", 0)) if isinstance(
                       getattr(est, "details", None), dict) else 0,
                   quad_factors=0 if pname == "gauss" else 1, cf_entries=cf_entries)
    elif name == "posterior_step":
        from theory.posterior.grid1d import Grid1D
        from theory.posterior.likelihoods import make_likelihood
        prior = make_prior("bimodal", 1)
        lik = make_likelihood("gaussian", [[1.0]], [0.7], sigma=0.5)
        g = Grid1D(prior, lik, eta_max=0.3)
        g.laws([0.3, 0.3])                                                        # warm-up
        K = 20
        g = Grid1D(prior, lik, eta_max=0.3)
        laws, wall, cpu = _timed(lambda: g.laws([0.3] * K))
        rec.update(wall=wall / K, cpu=cpu / K, n_x=int(g.x.size), n_z=int(g.z.size),
                   value=float(np.asarray(laws[-1]) @ g.x))
    elif name in ("mixture_score", "sampler", "pushforward"):
        torch.set_num_threads(int(os.environ.get("ROOFLINE_THREADS", "1")))
        d, K = 64, 8
        prior = make_prior("gmm", d, seed=0, device=device)
        g = torch.Generator(device=device).manual_seed(0)
        if name == "mixture_score":
            n = 4096
            m = prior.marginal(0.5)
            x = m.sample(n, generator=g)
            m.score(x[:16])                                                       # warm-up
            best_w = best_c = math.inf
            for _ in range(5):
                _sync(device)
                s, wall, cpu = _timed(lambda: (m.score(x), _sync(device))[0])
                best_w, best_c = min(best_w, wall), min(best_c, cpu)
            rec.update(wall=best_w, cpu=best_c, n=n, d=d, K=K,
                       value=float(s.double().pow(2).mean()))
        elif name == "sampler":
            from theory.samplers import AnalyticScore, run_sampler
            n, T = 4096, 100
            sched = li_schedule(T)
            rule = sampler_rule("li-sde", sched)
            score = AnalyticScore(prior, sched)
            run_sampler(sampler_rule("li-sde", li_schedule(20)), AnalyticScore(prior, li_schedule(20)),
                        8, d, generator=g, device=device)                        # warm-up
            for t in range(2, T + 1):      # the marginals are built once per t in real use
                score.marginal(t)
            _sync(device)
            y, wall, cpu = _timed(lambda: (run_sampler(rule, score, n, d, generator=g,
                                                       device=device), _sync(device))[0])
            rec.update(wall=wall / (T - 1), cpu=cpu / (T - 1), n=n, d=d, K=K, T=T,
                       value=float(y.double().pow(2).mean()))
        else:
            from theory.laws.pushforward import sample_with_log_density
            n = int(os.environ.get("ROOFLINE_PF_N", 500))
            T = 100
            sample_with_log_density(prior, sampler_rule("li-ode", li_schedule(20)), 8, seed=1)
            rule = sampler_rule("li-ode", li_schedule(T))
            res, wall, cpu = _timed(lambda: sample_with_log_density(prior, rule, n, seed=0))
            rec.update(wall=wall / (T - 1), cpu=cpu / (T - 1), n=n, d=d, K=K, T=T,
                       value=float(res.log_p.mean()))
    else:
        raise SystemExit(f"unknown path {name!r}")
    return rec


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------

def _child(tree, name, device, env_extra):
    env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS=env_extra.get("threads", "1"),
               MKL_NUM_THREADS=env_extra.get("threads", "1"),
               OPENBLAS_NUM_THREADS=env_extra.get("threads", "1"),
               ROOFLINE_THREADS=env_extra.get("threads", "1"))
    env.update({k: v for k, v in env_extra.items() if k.startswith("ROOFLINE_")})
    out = subprocess.run([sys.executable, HERE, "--one", name, "--device", device],
                         env=env, capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"name": name, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1])


STARTUP_COMMANDS = {
    "python": ["-c", "pass"],
    "numpy + scipy.special": ["-c", "import numpy, scipy.special"],
    "numpy + scipy.special + scipy.ndimage": ["-c", "import numpy, scipy.special, scipy.ndimage"],
    "measure gauss d=1 T=10": ["-m", "experiments.cli.main", "measure", "--prior", "gauss",
                               "--d", "1", "--T", "10", "--json"],
    "measure bimodal d=1 T=10": ["-m", "experiments.cli.main", "measure", "--prior", "bimodal",
                                 "--d", "1", "--T", "10", "--json"],
}


def startup_times(trees: dict, repeats: int = 5) -> dict:
    """Median wall-clock seconds of each :data:`STARTUP_COMMANDS` entry in a fresh process
    (run from each tree, its root on ``PYTHONPATH``), the commands and trees interleaved
    round by round so that a change of load hits them all alike."""
    times = {(t, k): [] for t in trees for k in STARTUP_COMMANDS}
    for _ in range(repeats):
        for tree, root in trees.items():
            for key, args in STARTUP_COMMANDS.items():
                if tree != "this" and not key.startswith("measure"):
                    continue                         # the floor does not depend on the tree
                env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS="1")
                t0 = time.perf_counter()
                p = subprocess.run([sys.executable, *args], cwd=root, env=env,
                                   capture_output=True, text=True)
                dt = time.perf_counter() - t0
                if p.returncode != 0:
                    raise RuntimeError(f"{key} failed in {root}: {p.stderr.strip()[-300:]}")
                times[(tree, key)].append(dt)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items() if v}


def _report_startup(trees, repeats=5):
    med = startup_times(trees, repeats)
    floor = {k: med[("this", k)] for k in STARTUP_COMMANDS if not k.startswith("measure")}
    print(f"startup (median of {repeats} fresh processes, interleaved): import floor "
          + ", ".join(f"{k} {v:.3f} s" for k, v in floor.items()))
    for key, fl in (("measure gauss d=1 T=10", "numpy + scipy.special"),
                    ("measure bimodal d=1 T=10", "numpy + scipy.special + scipy.ndimage")):
        line = (f"  {key}: {med[('this', key)]:.3f} s = floor + "
                f"{med[('this', key)] - floor[fl]:.3f} s ({fl})")
        if ("baseline", key) in med:
            line += (f"; baseline {med[('baseline', key)]:.3f} s: "
                     f"{med[('baseline', key)] / med[('this', key)]:.2f}x")
        print(line)


def _load():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=None,
                    help="another checkout (its root folder) to time the same paths against")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per path and tree")
    ap.add_argument("--long", action="store_true",
                    help="also T = 1e5 for the 1-D TV and n = 2000 for the push-forward")
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per process (default 1)")
    ap.add_argument("--only", default=None, help="comma-separated subset of the paths")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.device)))
        return 0

    import torch
    names = list(PATHS) + (list(LONG_PATHS) if args.long else [])
    if args.only:
        names = [n for n in args.only.split(",") if n]
    extra = {"threads": str(args.threads)}
    if args.long:
        extra["ROOFLINE_PF_N"] = "2000"
    trees = {"this": ROOT}
    if args.baseline:
        trees["baseline"] = os.path.abspath(args.baseline)

    load0 = _load()
    if names == ["startup"]:        # start-up alone has no rate: the machine's roof is not needed
        print(f"roofline: {os.cpu_count()} CPUs, load average {load0:.2f}")
        _report_startup(trees, max(5, args.repeats))
        print(f"load average after: {_load():.2f}")
        return 0
    torch.set_num_threads(args.threads)
    gemm = gemm_rate("cpu")
    bw = bandwidth()
    peak = (max(g[0] for g in gemm.values()), max(g[1] for g in gemm.values()))
    print(f"roofline: {os.cpu_count()} CPUs, load average {load0:.2f}; {args.threads} thread(s) "
          f"per process; torch {torch.__version__}")
    print("  float64 GEMM (2048^3, best of 5), GFLOP/s by wall / by CPU time: "
          + ", ".join(f"{k} {w:.1f} / {c:.1f}" for k, (w, c) in gemm.items())
          + f"; memory bandwidth (triad, 3 x 128 MB) {bw[0]:.1f} / {bw[1]:.1f} GB/s")
    print("  rates below: wall-clock rate / CPU-time rate, each as a fraction of the same "
          "measure of the machine's rate")
    devices = ["cpu"]
    if args.device.startswith("cuda"):
        if torch.cuda.is_available():
            g = gemm_rate(args.device)
            print(f"  {torch.cuda.get_device_name()}: float64 GEMM {g['torch'][0]:.1f} GFLOP/s")
            devices.append(args.device)
        else:
            print("  --device cuda asked but CUDA is not available: CPU only")

    results = {}
    for name in names:
        if name == "startup":
            _report_startup(trees, max(5, args.repeats))
            continue
        for dev in devices:
            if dev != "cpu" and name not in ("mixture_score", "sampler"):
                continue
            key = f"{name}@{dev}" if dev != "cpu" else name
            results[key] = {t: [] for t in trees}
            order = list(trees)
            for r in range(args.repeats):
                for tree in (order if r % 2 == 0 else order[::-1]):
                    results[key][tree].append(_child(trees[tree], name, dev, extra))
            _report(key, name, results[key], peak, bw, dev)
    print(f"load average after: {_load():.2f}")
    return 0


def _best(recs, field):
    vals = [r[field] for r in recs if field in r]
    return min(vals) if vals else math.nan


def _report(key, name, recs, peak, bw, dev):
    this = recs["this"]
    errs = [r["error"] for r in this if "error" in r]
    if errs:
        print(f"{key}: FAILED ({errs[0]})")
        return
    info = this[0]
    flops, nbytes, unit = _work(name, info)
    wall, cpu = _best(this, "wall"), _best(this, "cpu")
    rw, rc = flops / wall / 1e9, flops / cpu / 1e9
    bw_w, bw_c = nbytes / wall / 1e9, nbytes / cpu / 1e9
    line = (f"{key}: {wall * 1e3:.4g} ms per {unit} (cpu {cpu * 1e3:.4g} ms); "
            f"{rw:.2f} / {rc:.2f} GFLOP/s = {100 * rw / peak[0]:.1f}% / {100 * rc / peak[1]:.1f}% "
            f"of the GEMM rate; {bw_w:.2f} / {bw_c:.2f} GB/s = {100 * bw_w / bw[0]:.1f}% / "
            f"{100 * bw_c / bw[1]:.1f}% of the bandwidth")
    if "value" in info:
        line += f"; value {info['value']:.10g}"
    if "width" in info:
        line += f", interval width {info['width']:.4g}"
    print(line)
    if "baseline" in recs:
        base = recs["baseline"]
        berr = [r["error"] for r in base if "error" in r]
        if berr:
            print(f"    baseline: FAILED ({berr[0]})")
            return
        bw_, bc = _best(base, "wall"), _best(base, "cpu")
        b0 = base[0]
        extra = ""
        if "value" in b0:
            extra += f"; baseline value {b0['value']:.10g}"
        if "width" in b0:
            extra += f", width {b0['width']:.4g}"
        print(f"    baseline {bw_ * 1e3:.4g} ms (cpu {bc * 1e3:.4g} ms): speed-up "
              f"{bw_ / wall:.2f}x wall, {bc / cpu:.2f}x cpu (best of {len(this)} fresh "
              f"processes each, interleaved){extra}")


if __name__ == "__main__":
    sys.exit(main())
