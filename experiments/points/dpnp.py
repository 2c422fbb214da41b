"""``diffrates dpnp``: one DPnP configuration, the distance of law(x_k) to pi_eta and to the
posterior for k = 1..K.

    diffrates dpnp --prior bimodal --d 1 --likelihood gaussian --sigma 0.5 --y 0.7 --eta 0.3 \\
        --K 30 --pcs exact --dds exact --init standard-normal --metric tv --json

Methods (THEORY.md section 6; theory.posterior_exact):

* exact sub-samplers, d = 1: the laws of x_k by the grid Gibbs kernel; every distance is a
  quadrature with its error from refinement (h against 2h); the exact geometric rate is the
  second eigenvalue of the kernel;
* product prior, diagonal linear-Gaussian likelihood (denoising, inpainting), exact
  sub-samplers, any d: the 1-D computation per distinct coordinate, combined exactly (TV of a
  product through the law of the log-likelihood ratio, theory.distances.exact);
* exact sub-samplers, d = 2, any prior density and likelihood: the same on a 2-D grid
  (theory.posterior.grid2d: separable Gaussian blurs, the rate by Lanczos);
* inexact sub-samplers (mala, ula, sde, ode) in d = 1 or 2 (``method`` auto or grid): the
  exact grid law of every x_k of the actual sampler (theory.posterior.dpnp_grid in 1-D:
  Langevin PCS kernels per centre, the reverse SDE as Gaussian chain steps, the ODE by its
  tabulated map; theory.posterior.dpnp_grid2d in 2-D: ULA with a linear-Gaussian likelihood
  as an affine pull-back and an exact blur, the sde/ode DDS per axis for product priors, the
  sde on the 2-D grid otherwise); TV to pi_eta and to the posterior with the error of
  three-level refinement plus the mass the grid lost. Where no grid law exists (2-D MALA,
  2-D ULA with a nonlinear likelihood, 2-D ode with a non-product prior, 2-D point init with
  a Langevin PCS) ``method`` auto falls back to the chains below and says why, ``method``
  grid refuses;
* ``method`` samples (or the fallback), d = 1 or 2: n chains of the actual sampler,
  binned TV against the exact grid laws, basic-bootstrap CI, and the estimator's floor (its
  value on exact draws); a cross-check of the grid routes;
* ``--metric w2 | sliced_w2 | sinkhorn``, gaussian likelihood, any d and prior (mixtures):
  n chains against exact draws of pi_eta and of the posterior (Gaussian mixtures in closed
  form), each distance with its interval and floor (theory.distances.samples); the exact
  rate where the prior is Gaussian (the chain is then a Gaussian autoregression).

Bad input raises ValueError (status 2, one line).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from theory.checks import (NoExactLaw, check_memory, choice, integer, not_applicable, number,
                           positive)
from theory.distances.exact import factor_distance
from theory.distances.samples import sample_distance
from theory.laws.base import QuadratureFactor, QuadratureLaw1D
from theory.posterior.annealing import make_annealing, parse_annealing
from theory.posterior.dpnp_grid import dpnp_grid_refinement
from theory.posterior.dpnp_grid2d import dpnp_grid2d_refinement
from theory.posterior.closed_form import (as_gmm, pi_eta_closed_form, posterior_closed_form,
                                          to_mixture1d)
from theory.posterior.estimators import binned_tv, binned_tv_2d
from theory.posterior.grid1d import Grid1D
from theory.posterior.grid2d import Grid2D
from theory.posterior.grid_base import tv_masses, tv_masses_2d
from theory.posterior.inits import init_samples, point_init
from theory.posterior.likelihoods import (LinearGaussian, load_likelihood, make_likelihood,
                                          make_operator, noise_scale, observation)
from theory.prior_files import file_digest, load_prior
from theory.posterior.plug_and_play import DDSConfig, PCSConfig, run_dpnp
from theory.posterior.refinement import grid_refinement
from theory.priors import PRESETS, ProductPrior, make_prior, preset_memory
from theory.rng import check_device_name
from theory.samplers import SAMPLERS

from .measure import EMD_MAX_POINTS

__all__ = ["METRICS", "ROUTES", "DEFAULTS", "normalise_config", "build", "compute"]

METRICS = ("tv", "w2", "sliced_w2", "sinkhorn")
LIKELIHOODS = ("gaussian", "phase", "logistic")
OPERATORS = ("identity", "mask", "random")
PCS_METHODS = ("exact", "mala", "ula")
DDS_METHODS = ("exact", "sde", "ode")
ROUTES = ("auto", "grid", "samples")      # --method: how tv in d <= 2 is computed

DEFAULTS = {"prior": "bimodal", "d": 1, "likelihood": "gaussian", "operator": "identity",
            "m": None, "cond": 10.0, "keep": 0.5, "sigma": 0.5, "lam": 0.4, "y": "0.7",
            "eta": 0.3, "schedule": None, "K": None, "pcs": "exact", "pcs_steps": 100,
            "pcs_step": None, "dds": "exact", "dds_steps": 50, "dds_rule": None,
            "init": "standard-normal", "metric": "tv", "n": None, "seed": 0, "h": None,
            "device": "cpu", "prior_file": None, "likelihood_file": None, "method": "auto"}


def normalise_config(c: dict) -> dict:
    """Fill defaults, validate, return the canonical configuration.

    Every number is checked for range with the library's own checks (noise scales, the
    observation, the annealing schedule, the init point), a field the request would ignore is
    refused when it differs from its default (``cond`` without the random operator, ``lam``
    without the logistic likelihood, ``pcs_steps`` with exact PCS, ``n`` on the grid routes,
    ...), and the memory the request needs (prior, operator, chains, one record per level) is
    checked against what the machine has, all before anything is computed. The grids' own
    memory is the grid engines' to check.

    ``prior_file`` (:func:`theory.prior_files.load_prior`) replaces the preset prior and sets
    d; ``likelihood_file`` (:func:`theory.posterior.likelihoods.load_likelihood`: operator, y
    and the full noise covariance) replaces the likelihood, operator, sigma and y options.
    Each file's SHA-256 joins the configuration."""
    given = {k: v for k, v in c.items() if v is not None}
    c = {**DEFAULTS, **given}
    files = {}
    if c["prior_file"] is not None:
        p = load_prior(c["prior_file"])
        if "d" in given and integer("d", given["d"], lo=1) != p.dim:
            raise ValueError(f"d = {given['d']} but the prior file describes d = {p.dim}")
        c["prior"], c["d"] = "file", p.dim
        files.update(prior_file=str(c["prior_file"]),
                     prior_file_sha256=file_digest(c["prior_file"]))
    if c["likelihood_file"] is not None:
        lik = load_likelihood(c["likelihood_file"])
        if lik.dim != integer("d", c["d"], lo=1):
            raise ValueError(f"the likelihood file's operator acts on d = {lik.dim}, the prior "
                             f"has d = {c['d']}")
        c["likelihood"], c["sigma"] = "gaussian", lik.sigma        # whitened: sigma = 1
        c["y"] = ",".join(repr(float(v)) for v in lik.y)
        files.update(likelihood_file=str(c["likelihood_file"]),
                     likelihood_file_sha256=file_digest(c["likelihood_file"]))
    out = {"prior": "file" if "prior_file" in files else
           choice("prior", c["prior"], [p for p in PRESETS if p != "subspace"]),
           "d": integer("d", c["d"], lo=1),
           "likelihood": choice("likelihood", c["likelihood"], LIKELIHOODS),
           "operator": "file" if "likelihood_file" in files else
           choice("operator", c["operator"], OPERATORS), **files}
    out["m"] = None if c["m"] is None else integer("m", c["m"], lo=1)
    out["cond"] = number("cond", c["cond"], lo=1)
    out["keep"] = number("keep", c["keep"], positive=True, hi=1)
    out["sigma"] = noise_scale("sigma", c["sigma"])
    out["lam"] = noise_scale("lam", c["lam"])
    out["y"] = observation(c["y"])
    out["schedule"] = c["schedule"]
    out["eta"] = None if c["schedule"] is not None else positive("eta", c["eta"])
    out["K"] = None if c["K"] is None else integer("K", c["K"], lo=1)
    out["pcs"] = choice("pcs", c["pcs"], PCS_METHODS)
    out["pcs_steps"] = integer("pcs-steps", c["pcs_steps"], lo=1)
    out["pcs_step"] = None if c["pcs_step"] is None else positive("pcs-step", c["pcs_step"])
    out["dds"] = choice("dds", c["dds"], DDS_METHODS)
    out["dds_steps"] = integer("dds-steps", c["dds_steps"], lo=1)
    out["dds_rule"] = None if c["dds_rule"] is None else choice("dds-rule", c["dds_rule"],
                                                                SAMPLERS)
    out["init"] = str(c["init"])
    out["metric"] = choice("metric", c["metric"], METRICS)
    out["method"] = choice("method", c["method"], ROUTES)
    if out["metric"] != "tv" and out["method"] == "grid":
        raise ValueError(f"method grid computes tv; metric {out['metric']} is sample-based "
                         "(use --method auto or samples)")
    if out["method"] == "samples" and out["metric"] == "tv" and out["d"] > 2:
        raise ValueError(f"method samples with tv needs d <= 2 (binned TV against grid laws), "
                         f"not d = {out['d']}; use --metric sliced_w2, w2 or sinkhorn")
    n_default = 100000 if out["metric"] == "tv" else 5000
    out["n"] = integer("n", n_default if c["n"] is None else c["n"], lo=100)
    out["seed"] = integer("seed", c["seed"], lo=0)
    out["h"] = None if c["h"] is None else positive("h", c["h"])
    out["device"] = check_device_name(c["device"])
    if out["init"].startswith("point:"):
        point_init(out["init"], out["d"])
    elif out["init"] not in ("standard-normal", "prior"):
        raise ValueError(f"unknown init {out['init']!r}; use standard-normal, prior or point:V")
    _refuse_unused(given, out)
    if out["pcs"] == "exact" and out["likelihood"] != "gaussian":
        raise ValueError(f"exact PCS needs the gaussian likelihood, not {out['likelihood']}; "
                         "use --pcs mala or ula")
    if out["metric"] != "tv" and out["likelihood"] != "gaussian":
        raise ValueError(f"sample-based metrics compare against pi_eta and the posterior in "
                         f"closed form, which needs the gaussian likelihood, not "
                         f"{out['likelihood']}; use --metric tv with d <= 2")
    if out["metric"] == "w2" and out["d"] > 1 and out["n"] > EMD_MAX_POINTS:
        raise ValueError(f"exact OT (w2) on n = {out['n']} chains in d = {out['d']} needs an "
                         f"n x n cost matrix and O(n^3) time: use --n {EMD_MAX_POINTS} or fewer, "
                         "or --metric sliced_w2")
    levels = out["K"] or 30
    check_memory(PER_LEVEL_BYTES * levels, f"K = {levels} outer steps")
    if out["schedule"] is not None:
        levels = parse_annealing(out["schedule"], out["K"]).K      # validates the schedule
    check_memory(*memory_needed(out, levels), device=out["device"])
    return out


# one per-level record (distances with errors and methods) in memory: a lower bound
PER_LEVEL_BYTES = 1000


def _samples_route(cfg: dict) -> bool:
    """Whether the request may run chains (the routes that use ``n``): sample metrics,
    method samples, or tv with an inexact sub-sampler and method auto (whose fallback, where
    no grid law exists, runs chains)."""
    inexact = cfg["pcs"] != "exact" or cfg["dds"] != "exact"
    return (cfg["metric"] != "tv" or cfg["method"] == "samples"
            or (cfg["method"] == "auto" and inexact))


def _refuse_unused(given: dict, out: dict) -> None:
    """Refuse a field the request would ignore, when it differs from its default (a
    normalised configuration keeps every field, so the defaults pass again)."""
    default = {**DEFAULTS, "n": 100000 if out["metric"] == "tv" else 5000}

    def differs(key):
        return key in given and out[key] is not None and out[key] != default[key]

    rules = [("m", out["operator"] == "random", "operator random", f"operator {out['operator']}"),
             ("cond", out["operator"] == "random", "operator random",
              f"operator {out['operator']}"),
             ("keep", out["operator"] == "mask", "operator mask", f"operator {out['operator']}"),
             ("sigma", out["likelihood"] != "logistic", "likelihoods gaussian and phase",
              "likelihood logistic"),
             ("lam", out["likelihood"] == "logistic", "likelihood logistic",
              f"likelihood {out['likelihood']}"),
             ("pcs_steps", out["pcs"] != "exact", "pcs mala and ula", "pcs exact"),
             ("pcs_step", out["pcs"] != "exact", "pcs mala and ula", "pcs exact"),
             ("dds_steps", out["dds"] != "exact", "dds sde and ode", "dds exact"),
             ("dds_rule", out["dds"] != "exact", "dds sde and ode", "dds exact"),
             ("n", _samples_route(out), "the chains (a sample metric, method samples, or "
                                        "method auto with an inexact sub-sampler)",
              "the grid routes (metric tv, method grid or exact sub-samplers)"),
             ("h", out["metric"] == "tv", "the grid routes (metric tv)",
              f"metric {out['metric']}")]
    for key, applies, where, here in rules:
        if not applies and differs(key):
            not_applicable(key, given[key], where, here)
    if given.get("schedule") is not None and given.get("eta") is not None \
            and positive("eta", given["eta"]) != DEFAULTS["eta"]:
        raise ValueError("give either eta (a constant level) or schedule, not both")


def memory_needed(cfg: dict, levels: int) -> tuple:
    """A lower bound of the bytes a (normalised) configuration allocates outside the grids,
    and the words that name it: the prior's parameters, the dense operator, the chains (six
    (n, d) arrays on the sample routes) and one record per level."""
    d = cfg["d"]
    m = cfg["m"] or d
    op = 16 * (m * m + d * d + m * d) if cfg["operator"] == "random" else 8 * d * d
    chains = 48 * cfg["n"] * d if _samples_route(cfg) else 0
    nbytes = preset_memory(cfg["prior"], d) + op + chains + PER_LEVEL_BYTES * levels
    what = (f"n = {cfg['n']} chains in d = {d}" if chains >= op else
            f"prior {cfg['prior']} in d = {d} with its {cfg['operator']} operator (a dense "
            f"{m} x {d} matrix)")
    return nbytes, what


def _file(cfg, key):
    path = cfg[key]
    if file_digest(path) != cfg[key + "_sha256"]:
        raise ValueError(f"{path} changed since the configuration was made")
    return path


def build(cfg: dict):
    """Prior, likelihood and annealing schedule of a normalised configuration."""
    d = cfg["d"]
    if cfg["prior"] == "file":
        prior = load_prior(_file(cfg, "prior_file"))
    else:
        prior = make_prior(cfg["prior"], d,
                           **({"seed": cfg["seed"]} if cfg["prior"] == "gmm" else {}))
    if cfg["operator"] == "file":
        lik = load_likelihood(_file(cfg, "likelihood_file"))
    else:
        g = torch.Generator().manual_seed(cfg["seed"])
        if cfg["operator"] == "mask":
            A = make_operator("mask", d, keep_fraction=cfg["keep"])
        else:
            A = make_operator(cfg["operator"], d, m=cfg["m"], cond=cfg["cond"], generator=g)
        m = A.shape[0]
        ys = cfg["y"]
        if len(ys) == 1:
            ys = ys * m
        if len(ys) != m:
            raise ValueError(f"y has {len(ys)} values but the operator has {m} rows")
        lik = make_likelihood(cfg["likelihood"], A, ys, sigma=cfg["sigma"], lam=cfg["lam"])
    if cfg["schedule"] is not None:
        sched = parse_annealing(cfg["schedule"], cfg["K"])
    else:
        sched = make_annealing("constant", cfg["K"] or 30, eta=cfg["eta"])
    init = cfg["init"]
    if init.startswith("point:"):
        point_init(init, d)
    elif init not in ("standard-normal", "prior"):
        raise ValueError(f"unknown init {init!r}; use standard-normal, prior or point:V")
    return prior, lik, sched


def _est(value, err, method, extra=None):
    v = float(value)
    e = float(err)
    out = {"value": v, "lower": max(0.0, v - e), "upper": min(1.0, v + e), "error": e,
           "method": method}
    if extra:
        out.update(extra)
    return out


def _measured_decay(tv, floor=0.0):
    """Geometric decay exp(slope) of log TV_k against k over the second half of the points
    that stay above ``floor`` (None if fewer than 3)."""
    tv = np.asarray(tv, float)
    k = np.arange(1, tv.size + 1)
    ok = tv > max(floor, 1e-300)
    k, tv = k[ok], tv[ok]
    if k.size < 3:
        return None
    half = k.size // 2
    k, tv = k[half:] if k.size - half >= 3 else k[-3:], tv[half:] if k.size - half >= 3 else tv[-3:]
    slope = np.polyfit(k, np.log(tv), 1)[0]
    return {"rate": float(math.exp(slope)), "k_range": [int(k[0]), int(k[-1])],
            "method": "least squares of log TV(law x_k, pi_eta) on k"}


def compute(cfg: dict) -> dict:
    """Run one configuration (normalised); returns the result dictionary.

    Routes: metric tv and d = 1 or 2: grid laws (exact sub-samplers) or chains against grid
    laws (inexact ones); tv on a product prior with a diagonal gaussian likelihood, any d:
    exact per-coordinate laws; sample metrics (w2, sliced_w2, sinkhorn), any d: chains
    against exact draws of the closed-form pi_eta and posterior."""
    prior, lik, sched = build(cfg)
    d = cfg["d"]
    exact_sub = cfg["pcs"] == "exact" and cfg["dds"] == "exact"
    method = cfg.get("method", "auto")
    t0 = time.perf_counter()
    if cfg["metric"] != "tv":
        res = _sample_closed_form(prior, lik, sched, cfg)
        res["route"] = {"name": "samples", "reason": f"metric {cfg['metric']} is sample-based"}
    elif exact_sub and method != "samples" and d > 1 and isinstance(prior, ProductPrior) \
            and lik.diagonal and lik.linear_gaussian:
        res = _product_exact(prior, lik, sched, cfg)
        res["route"] = {"name": "product-grid", "reason": None}
    elif d <= 2:
        if method == "samples":
            res = _sample_based(prior, lik, sched, cfg)
            res["route"] = {"name": "samples", "reason": "method samples (a cross-check)"}
        elif exact_sub:
            res = _grid_exact(prior, lik, sched, cfg)
            res["route"] = {"name": "grid", "reason": None}
        else:
            try:
                res = _grid_inexact(prior, lik, sched, cfg)
                res["route"] = {"name": "grid", "reason": None}
            except NoExactLaw as exc:
                if method == "grid":
                    raise NoExactLaw(f"method grid: {exc}") from None
                res = _sample_based(prior, lik, sched, cfg)
                res["route"] = {"name": "samples", "reason": f"no grid law: {exc}"}
    else:
        raise ValueError(f"tv in d = {d} needs a product prior (bimodal, gauss) with a diagonal "
                         "gaussian likelihood (identity or mask) and exact sub-samplers; for "
                         "other problems use a sample-based metric (--metric sliced_w2, w2 or "
                         "sinkhorn; gaussian likelihood)")
    res["schedule"] = sched.describe()
    res["torch_threads"] = torch.get_num_threads()
    res["seconds"] = time.perf_counter() - t0
    return res


def _grid(prior, lik, etas, h):
    """The 1-D or 2-D grid engine for these levels."""
    kw = {"h": h, "eta_max": max(etas), "eta_min": min(etas)}
    return Grid1D(prior, lik, **kw) if prior.dim == 1 else Grid2D(prior, lik, **kw)


def _grid_exact(prior, lik, sched, cfg):
    etas = [float(e) for e in sched.etas]
    fine, coarse, err = grid_refinement(prior, lik, etas, cfg["init"], h=cfg["h"])
    if prior.dim == 1:
        meth = (f"grid Gibbs kernel, quadrature (h = {fine.info['h']:.4g}, {fine.info['n_x']} x "
                f"/ {fine.info['n_z']} z points), error = |h - 2h| difference")
    else:
        nx, nz = fine.info["n_x"], fine.info["n_z"]
        meth = (f"2-D grid Gibbs chain, separable Gaussian blurs (h = {fine.info['h']:.4g}, "
                f"{nx[0]} x {nx[1]} x nodes, {nz[0]} x {nz[1]} z nodes), error = |h - 2h| "
                "difference")
    per_k = []
    for k, eta in enumerate(etas, start=1):
        per_k.append({"k": k, "eta": eta,
                      "to_pi_eta": _est(fine.tv_pi[k - 1], err["tv_pi"][k - 1] + 1e-12, meth),
                      "to_posterior": _est(fine.tv_post[k - 1], err["tv_post"][k - 1] + 1e-12, meth)})
    seen, pipost, rates = [], [], []
    for k, eta in enumerate(etas):
        if eta in seen:
            continue
        seen.append(eta)
        pipost.append({"eta": eta, **_est(fine.tv_pi_post[k], err["tv_pi_post"][k] + 1e-12,
                                          "grid quadrature, error by refinement")})
        rates.append({"eta": eta, "value": fine.rates[eta], "error": err["rates"][eta] + 1e-12,
                      "method": "second eigenvalue modulus of the grid Gibbs kernel M = P D"
                                + ("" if prior.dim == 1 else " (Lanczos, matrix-free)")})
    out = {"per_k": per_k, "tv_pi_eta_posterior": pipost, "exact_rate": rates,
           "grid": fine.info}
    if sched.constant:
        out["measured_decay"] = _measured_decay(fine.tv_pi, floor=1e-10)
    return out


def _describe_subsamplers(cfg, prior):
    """Words for the grid laws of the configured sub-samplers (dpnp_grid, dpnp_grid2d)."""
    n, m = cfg["pcs_steps"], cfg["dds_steps"]
    if prior.dim == 1:
        pcs = {"exact": "exact PCS", "ula": f"ULA PCS ({n} steps) as kernels per centre",
               "mala": f"MALA PCS ({n} steps) as kernels per centre"}[cfg["pcs"]]
        dds = {"exact": "exact DDS",
               "sde": f"reverse-SDE DDS ({m} steps) as Gaussian chain steps",
               "ode": f"probability-flow DDS ({m} steps) by its tabulated map"}[cfg["dds"]]
        return f"dpnp_grid: {pcs}, {dds}; TV by spectral quadrature"
    pcs = {"exact": "exact PCS",
           "ula": f"ULA PCS ({n} steps) as an affine pull-back and an exact Gaussian blur"
           }.get(cfg["pcs"], cfg["pcs"])
    dds = {"exact": "exact DDS", "sde": f"reverse-SDE DDS ({m} steps)",
           "ode": f"probability-flow DDS ({m} steps)"}[cfg["dds"]]
    if cfg["dds"] != "exact":
        dds += (" per axis (product prior)" if isinstance(prior, ProductPrior) else
                " on the 2-D grid")
    return f"dpnp_grid2d: {pcs}, {dds}"


def _grid_inexact(prior, lik, sched, cfg):
    """Exact grid laws of DPnP with inexact sub-samplers, d = 1 or 2 (dpnp_grid,
    dpnp_grid2d): every x_k, with errors by refinement plus the lost mass. Raises
    NoExactLaw where the grid engines have no law for the request."""
    etas = [float(e) for e in sched.etas]
    pcs = PCSConfig(cfg["pcs"], cfg["pcs_steps"], cfg["pcs_step"])
    dds = DDSConfig(cfg["dds"], cfg["dds_steps"], cfg["dds_rule"])
    if prior.dim == 1:
        fine, err = dpnp_grid_refinement(prior, lik, etas, pcs, dds, init=cfg["init"],
                                         h=cfg["h"])
        info = fine["info"]
        lost = float(fine["lost"][-1])
        nodes = f"{info['n_x']} x / {info['n_z']} z nodes"
        levels = "h, 2h, 4h; + the kink term of the TV quadrature"
    else:
        fine, err = dpnp_grid2d_refinement(prior, lik, etas, pcs, dds, init=cfg["init"],
                                           h=cfg["h"])
        info = fine["info"]
        lost = float(fine["lost"])
        nx, nz = info["n_x"], info["n_z"]
        nodes = f"{nx[0]} x {nx[1]} x nodes, {nz[0]} x {nz[1]} z nodes"
        levels = "h, 1.5h, 2.25h; the raw coarser difference where the observed order > 4"
    meth = (f"DPnP grid law ({_describe_subsamplers(cfg, prior)}; h = {info['h']:.4g}, "
            f"{nodes}), error = three-level refinement ({levels}) + lost mass")
    per_k = [{"k": k, "eta": eta,
              "to_pi_eta": _est(fine["tv_pi"][k - 1], err["tv_pi"][k - 1], meth),
              "to_posterior": _est(fine["tv_post"][k - 1], err["tv_post"][k - 1], meth)}
             for k, eta in enumerate(etas, start=1)]
    seen, pipost = [], []
    for k, eta in enumerate(etas):
        if eta in seen:
            continue
        seen.append(eta)
        pipost.append({"eta": eta, **_est(fine["tv_pi_post"][k], err["tv_pi_post"][k],
                                          "grid quadrature, error by refinement")})
    rates = [{"eta": eta, "value": None,
              "method": "not computed: this route forms the law of every x_k, not the "
                        "spectrum of the inexact chain's kernel"} for eta in seen]
    return {"per_k": per_k, "tv_pi_eta_posterior": pipost, "exact_rate": rates,
            "grid": {**info, "levels": err["levels"], "asymptotic": err["asymptotic"],
                     "lost_mass": lost}}


def _sample_based(prior, lik, sched, cfg):
    """Chains of the actual (inexact) sampler against the exact grid laws, d = 1 or 2."""
    etas = [float(e) for e in sched.etas]
    grid = _grid(prior, lik, etas, cfg["h"])
    post = grid.posterior()
    pis = {e: grid.pi_eta(e) for e in set(etas)}
    g = torch.Generator(device=cfg["device"]).manual_seed(cfg["seed"])
    x0 = init_samples(cfg["init"], prior, cfg["n"], generator=g, device=cfg["device"])
    pcs = PCSConfig(cfg["pcs"], cfg["pcs_steps"], cfg["pcs_step"])
    dds = DDSConfig(cfg["dds"], cfg["dds_steps"], cfg["dds_rule"])
    if prior.dim == 1:
        def distance(x, mass, seed):
            return binned_tv(x[:, 0], grid.x, mass, seed=seed).to_dict()
        tv_grid = tv_masses
    else:
        def distance(x, mass, seed):
            return binned_tv_2d(x, grid.axes, mass, seed=seed).to_dict()
        tv_grid = tv_masses_2d
    per_k = []

    def cb(k, zh, x):
        eta = etas[k - 1]
        per_k.append({"k": k, "eta": eta,
                      "to_pi_eta": distance(x, pis[eta], cfg["seed"] + k),
                      "to_posterior": distance(x, post, cfg["seed"] + 7919 + k)})

    res = run_dpnp(prior, lik, sched, x0, pcs=pcs, dds=dds, generator=g, keep=False, callback=cb)
    seen, pipost, rates = [], [], []
    for eta in etas:
        if eta in seen:
            continue
        seen.append(eta)
        pipost.append({"eta": eta, "value": tv_grid(pis[eta], post),
                       "method": f"grid quadrature (h = {grid.h:.4g})"})
        rates.append({"eta": eta, "value": grid.rate(eta), "method": "second eigenvalue "
                      "modulus of the grid Gibbs kernel of the exact sub-samplers (the inexact "
                      "chain's rate may differ)"})
    return {"per_k": per_k, "tv_pi_eta_posterior": pipost, "exact_rate": rates,
            "cost_per_chain": {"score_calls": res.score_calls,
                               "likelihood_gradient_calls": res.lik_grad_calls},
            "pcs_acceptance": res.acceptance or None,
            "grid": {"h": grid.h,
                     "n_x": [int(a.size) for a in (grid.axes if prior.dim == 2 else [grid.x])]}}


def _gaussian_chain_rate(prior, lik, eta):
    r"""Exact rate of DPnP with exact sub-samplers for a Gaussian prior and a linear-Gaussian
    likelihood: the chain is the Gaussian autoregression :math:`x_{k+1} = B x_k + c + \xi`,
    :math:`B = C_x C_z / \eta^4` with :math:`C_z = (A^\top A/\sigma^2 + I/\eta^2)^{-1}` (PCS) and
    :math:`C_x = (\Sigma^{-1} + I/\eta^2)^{-1}` (DDS); its L2 spectral gap is set by the
    spectral radius of B."""
    A = lik.A.cpu().numpy().astype(float)
    S = prior.covs[0].cpu().numpy().astype(float)
    d = A.shape[1]
    Cz = np.linalg.inv(A.T @ A / lik.sigma ** 2 + np.eye(d) / eta ** 2)
    Cx = np.linalg.inv(np.linalg.inv(S) + np.eye(d) / eta ** 2)
    return float(np.max(np.abs(np.linalg.eigvals(Cx @ Cz / eta ** 4))))


def _sample_closed_form(prior, lik, sched, cfg):
    """n chains of the actual sampler against exact draws of pi_eta and the posterior (both
    Gaussian mixtures in closed form for a linear-Gaussian likelihood): sample-based
    distance with its interval and floor at every k."""
    etas = [float(e) for e in sched.etas]
    n, metric = cfg["n"], cfg["metric"]
    try:
        mixture = as_gmm(prior)
    except ValueError as exc:
        raise ValueError(f"no closed-form target for this prior: {exc}") from None
    gt = torch.Generator(device=cfg["device"]).manual_seed(cfg["seed"] + 1)
    post = posterior_closed_form(prior, lik)
    targets = {"posterior": (post.sample(n, generator=gt), post.sample(n, generator=gt))}
    for eta in sorted(set(etas)):
        pe = pi_eta_closed_form(prior, lik, eta)
        targets[eta] = (pe.sample(n, generator=gt), pe.sample(n, generator=gt))
    kw = {"n_boot": 30, **({"n_projections": 100} if metric == "sliced_w2" else {})}

    def distance(x, key, seed):
        y, yf = targets[key]
        est = sample_distance(x, y, metric, y_floor=yf, seed=seed, **kw)
        return {"value": est.value, "statistic": est.details["statistic"],
                "lower": est.lower, "upper": est.upper,
                "method": est.method + "; " + est.details["interval"],
                "floor": est.details["floor"]["value"],
                "floor_upper": est.details["floor"]["upper"],
                "below_floor": est.details["below_floor"]}

    g = torch.Generator(device=cfg["device"]).manual_seed(cfg["seed"])
    x0 = init_samples(cfg["init"], prior, n, generator=g, device=cfg["device"])
    pcs = PCSConfig(cfg["pcs"], cfg["pcs_steps"], cfg["pcs_step"])
    dds = DDSConfig(cfg["dds"], cfg["dds_steps"], cfg["dds_rule"])
    per_k = []

    def cb(k, zh, x):
        eta = etas[k - 1]
        per_k.append({"k": k, "eta": eta, "to_pi_eta": distance(x, eta, cfg["seed"] + k),
                      "to_posterior": distance(x, "posterior", cfg["seed"] + 7919 + k)})

    res = run_dpnp(prior, lik, sched, x0, pcs=pcs, dds=dds, generator=g, keep=False, callback=cb)
    pipost, rates = [], []
    gaussian = mixture.n_components == 1
    for eta in sorted(set(etas), reverse=True):
        pipost.append({"eta": eta, **distance(targets[eta][1], "posterior", cfg["seed"])})
        rates.append({"eta": eta,
                      "value": _gaussian_chain_rate(mixture, lik, eta) if gaussian else None,
                      "method": ("spectral radius of the autoregression matrix of the Gaussian "
                                 "chain (exact sub-samplers)" if gaussian else
                                 "not known in closed form for a mixture prior in d > 2")})
    return {"per_k": per_k, "tv_pi_eta_posterior": None, "distance_pi_eta_posterior": pipost,
            "exact_rate": rates, "metric": metric,
            "cost_per_chain": {"score_calls": res.score_calls,
                               "likelihood_gradient_calls": res.lik_grad_calls},
            "pcs_acceptance": res.acceptance or None,
            "targets": "exact draws of the closed-form Gaussian mixtures pi_eta and posterior"}


def _product_exact(prior, lik, sched, cfg):
    """Diagonal linear-Gaussian likelihood, product prior: exact per-coordinate 1-D laws,
    combined by the TV of a product (theory.distances.factor_distance)."""
    etas = [float(e) for e in sched.etas]
    A = lik.A
    d = lik.dim
    obs = {}
    for r in range(A.shape[0]):
        j = int(torch.nonzero(A[r])[0, 0])
        obs[j] = (float(A[r, j]), float(lik.y[r]))
    # group coordinates by (prior params, observation)
    groups = {}
    for j in range(d):
        w, mu, sd = prior.coordinate_params(j)
        key = (tuple(w), tuple(mu), tuple(sd), obs.get(j))
        groups.setdefault(key, []).append(j)
    if cfg["init"].startswith("point:") and len(set(cfg["init"][6:].split(","))) > 1:
        raise ValueError("d > 1 needs a point init with one value for every coordinate")
    levels = {}
    for key, idx in groups.items():
        w, mu, sd, o = key
        p1 = ProductPrior([list(w)], [list(mu)], [list(sd)])
        if o is None:  # unobserved coordinate: a flat likelihood (A = 0)
            l1 = LinearGaussian([[0.0]], [0.0], 1.0)
        else:
            l1 = LinearGaussian([[o[0]]], [o[1]], lik.sigma)
        levels[key] = (p1, l1, len(idx), grid_refinement(p1, l1, etas, cfg["init"], h=cfg["h"]))

    def product_tv(which, k, level):
        factors = []
        for key, (p1, l1, mult, (fine, coarse, _)) in levels.items():
            r = fine if level == "fine" else coarse
            mass = r.laws[k]
            x = r.x
            h = x[1] - x[0]
            with np.errstate(divide="ignore"):
                logp = np.log(np.maximum(mass / h, 1e-320))
            cdf = np.cumsum(mass)
            law = QuadratureLaw1D(x, np.full_like(x, h), logp, cdf, 1 - cdf, "grid")
            tgt = pi_eta_closed_form(p1, l1, etas[k]) if which == "pi" else posterior_closed_form(p1, l1)
            factors.append(QuadratureFactor(law, to_mixture1d(tgt), mult))
        val, nerr, meth, _ = factor_distance(factors, "tv")
        return val, nerr, meth

    per_k = []
    for k, eta in enumerate(etas):
        row = {"k": k + 1, "eta": eta}
        for which, name in (("pi", "to_pi_eta"), ("post", "to_posterior")):
            vf, ef, meth = product_tv(which, k, "fine")
            vc, ec, _ = product_tv(which, k, "coarse")
            row[name] = _est(vf, abs(vf - vc) + ef + 1e-12,
                             f"per-coordinate grid laws ({len(levels)} distinct coordinates), "
                             f"{meth}; error by refinement")
        per_k.append(row)
    return {"per_k": per_k, "tv_pi_eta_posterior": None,
            "exact_rate": [{"eta": eta, "value": max(lv[3][0].rates[eta] for lv in levels.values()),
                            "method": "max over coordinates of the 1-D kernels' second "
                                      "eigenvalue (the product chain's rate)"}
                           for eta in sorted(set(etas), reverse=True)],
            "coordinates": {"distinct": len(levels)}}
