"""One configuration -> one distance: the function behind ``diffrates measure`` and the
experiments. Validates every field and raises ``ValueError`` with a one-line message."""
from __future__ import annotations

from theory.checks import NoExactLaw, check_memory, choice, integer, not_applicable, positive
from theory.distances.exact import METRICS, exact_distance
from theory.prior_files import file_digest, load_prior
from theory.priors import (PRESETS, Gaussian, ProductPrior, SubspaceMixture, make_prior,
                           preset_memory)
from theory.rng import check_device_name
from theory.samplers import SAMPLERS, sampler_rule
from theory.schedules import SCHEDULES, make_schedule
from theory.score_errors import PERTURBATIONS, make_perturbation
from theory.stages import INITS, TARGETS, StageRule

__all__ = ["normalise_config", "measure", "memory_needed", "DEFAULTS"]

DEFAULTS = {"prior": "bimodal", "d": 1, "sampler": "li-ode", "schedule": "li", "T": 1000,
            "metric": "tv", "c0": 2.0, "c1": 4.0, "device": "cpu", "seed": 0,
            "method": "exact", "perturbation": "none", "eps": 0.0, "samples": None,
            "prior_seed": 0, "target": "q1", "init": "standard-normal", "prior_file": None}

METHODS = ("exact", "pushforward", "samples", "auto")
SAMPLE_ONLY_METRICS = ("sliced_w2", "sinkhorn")   # sample-based metrics (method samples)
# exact OT between n-point clouds: an n x n float64 cost matrix and O(n^3) network simplex
EMD_MAX_POINTS = 5000


def normalise_config(cfg: dict) -> dict:
    """Fill defaults and validate; the result is the canonical configuration (cache key).

    Every number is checked for range (the schedule and the perturbation are built once to
    check their constants with the library's own words), and a field that the request would
    ignore (``c0`` without the li schedule, ``eps`` without a perturbation, ``samples`` with
    the exact method, ``prior_seed`` without the gmm prior) is refused.

    ``target`` / ``init`` appear only when not the default (q1 / standard-normal), so the
    configurations of earlier results keep their keys. ``prior_file`` (JSON or NPZ, see
    :mod:`theory.prior_files`) replaces the preset: the prior becomes ``"file"``, ``d`` is the
    file's (an explicit ``d`` must agree) and the file's SHA-256 joins the key."""
    given = {k: v for k, v in cfg.items() if v is not None}
    c = {**DEFAULTS, **given}
    file_prior = None
    if c["prior_file"] is not None:
        if "prior" in given and given["prior"] != "file":
            raise ValueError("give either a preset prior or a prior file, not both")
        file_prior = load_prior(c["prior_file"])
        if "d" in given and integer("d", given["d"], lo=1) != file_prior.dim:
            raise ValueError(f"d = {given['d']} but the prior file describes d = "
                             f"{file_prior.dim}")
        c["prior"], c["d"] = "file", file_prior.dim
    out = {
        "prior": "file" if file_prior is not None else choice("prior", c["prior"],
                                                               tuple(PRESETS)),
        "d": integer("d", c["d"], lo=1),
        "sampler": choice("sampler", c["sampler"], SAMPLERS),
        "schedule": choice("schedule", c["schedule"], tuple(SCHEDULES)),
        "T": integer("T", c["T"], lo=2),
        "metric": choice("metric", c["metric"], METRICS + SAMPLE_ONLY_METRICS),
        "device": check_device_name(c["device"]),
        "seed": integer("seed", c["seed"], lo=0),
        "method": choice("method", c["method"], METHODS),
        "perturbation": choice("perturbation", c["perturbation"],
                                ("none",) + tuple(PERTURBATIONS)),
    }
    _refuse_unused(given, out)
    if out["perturbation"] != "none":
        out["eps"] = make_perturbation(out["perturbation"], c["eps"]).eps   # range checked
    if out["method"] != "exact":
        # default: 20000, but 1000 for exact OT in d > 1 (each of its ~400 bootstrap and
        # floor solves is an n x n network simplex)
        default_n = 1000 if out["metric"] == "w2" and out["d"] > 1 else 20000
        out["samples"] = integer("samples", default_n if c["samples"] is None else c["samples"], lo=10)
    if out["prior"] == "gmm":
        out["prior_seed"] = integer("prior_seed", c["prior_seed"], lo=0)
    if file_prior is not None:
        out["prior_file"] = str(c["prior_file"])
        out["prior_file_sha256"] = file_digest(c["prior_file"])
    for key, options in (("target", TARGETS), ("init", INITS)):
        v = choice(key, c[key], options)
        if v != DEFAULTS[key]:
            out[key] = v
    if out["schedule"] == "li":
        out["c0"] = positive("c0", c["c0"])
        out["c1"] = positive("c1", c["c1"])
    make_schedule(out["schedule"], out["T"], **_schedule_params(out))  # T, c0, c1 in range
    return out


def _refuse_unused(given: dict, out: dict) -> None:
    """A field the request would ignore is refused (it would be silently dropped)."""
    if out["schedule"] != "li":
        for k in ("c0", "c1"):
            if k in given:
                not_applicable(k, given[k], "schedule li", f"schedule {out['schedule']}")
    if out["perturbation"] == "none" and "eps" in given:
        not_applicable("eps", given["eps"], "a score perturbation (perturbation)",
                       "perturbation none")
    if out["method"] == "exact" and "samples" in given:
        not_applicable("samples", given["samples"], "methods pushforward, samples and auto",
                       "method exact")
    if out["prior"] != "gmm" and "prior_seed" in given:
        not_applicable("prior_seed", given["prior_seed"], "prior gmm", f"prior {out['prior']}")


def _schedule_params(cfg: dict) -> dict:
    return {"c0": cfg["c0"], "c1": cfg["c1"]} if cfg["schedule"] == "li" else {}


def memory_needed(cfg: dict, method: str) -> tuple:
    """A lower bound of the bytes one configuration (normalised) allocates with ``method``
    and the words that name it: the prior's parameters, the schedule's (T + 1)-vectors, and
    for the sampling methods the (n, d) sample arrays (seven of them: outputs, two target sets
    and their draws), plus an n x n matrix for exact OT in d > 1 and two for Sinkhorn."""
    n, d = cfg.get("samples") or 0, cfg["d"]
    nbytes = preset_memory(cfg["prior"], d) + 40 * (cfg["T"] + 1)
    what = f"prior {cfg['prior']} in d = {d} with T = {cfg['T']}"
    if method == "samples":
        nbytes += 56 * n * d + {"sinkhorn": 16 * n * n, "sliced_w2": 3200 * n,
                                "w2": 8 * n * n if d > 1 else 0}.get(cfg["metric"], 0)
        what = f"samples = {n} in d = {d} (metric {cfg['metric']})"
    elif method == "pushforward":
        nbytes += 32 * n * d
        what = f"samples = {n} in d = {d} (pushforward)"
    return nbytes, what


def build_prior(cfg: dict, device=None):
    """The prior of a normalised configuration (a preset, or the prior file)."""
    if cfg["prior"] == "file":
        if file_digest(cfg["prior_file"]) != cfg["prior_file_sha256"]:
            raise ValueError(f"prior file {cfg['prior_file']} changed since the configuration "
                             "was made")
        return load_prior(cfg["prior_file"], device=device)
    kw = {"seed": cfg.get("prior_seed", 0)} if cfg["prior"] == "gmm" else {}
    return make_prior(cfg["prior"], cfg["d"], device=device, **kw)


def build(cfg: dict):
    """Prior, schedule and sampler rule of a normalised configuration."""
    prior = build_prior(cfg)
    schedule = make_schedule(cfg["schedule"], cfg["T"], **_schedule_params(cfg))
    return prior, schedule, sampler_rule(cfg["sampler"], schedule,
                                         target=cfg.get("target", "q1"),
                                         init=cfg.get("init", "standard-normal"))


def applicable_methods(cfg: dict, prior, rule) -> list:
    """The methods that can compute this configuration, most accurate first."""
    out = []
    try:
        pert = None
        if cfg["perturbation"] != "none":
            pert = make_perturbation(cfg["perturbation"], cfg["eps"])
        if pert is not None and isinstance(rule, StageRule):
            raise NoExactLaw("score perturbations apply to one-stage rules")
        _exact_possible(prior, pert)
        out.append("exact")
    except NoExactLaw:
        pass
    if cfg["metric"] in SAMPLE_ONLY_METRICS:       # no exact engine computes these
        out = []
    if cfg["perturbation"] == "none":
        # multi-stage rules: the forward density only (one-sided TV; no KL(q || p))
        pf_metrics = ("tv",) if isinstance(rule, StageRule) else ("tv", "kl")
        if rule.deterministic and cfg["metric"] in pf_metrics:
            out.append("pushforward")
        if cfg["metric"] in ("w2",) + SAMPLE_ONLY_METRICS:
            out.append("samples")
    return out


def _exact_possible(prior, pert):
    if pert is not None and not pert.affine and not isinstance(prior, ProductPrior):
        raise NoExactLaw("exact laws under a score perturbation need a product prior")
    if isinstance(prior, (Gaussian, ProductPrior)):
        return
    if isinstance(prior, SubspaceMixture) and isinstance(prior.inner, (Gaussian, ProductPrior)):
        return
    raise NoExactLaw("no exact output law for this prior")


def measure(cfg: dict) -> dict:
    """Distance between law(Y_1) and q_1 (or law(Y_0) and the data law, ``target: data``) for
    one configuration, with interval and method."""
    cfg = normalise_config(cfg)
    check_memory(*memory_needed(cfg, "exact"))      # before the prior is built
    prior, schedule, rule = build(cfg)
    methods = applicable_methods(cfg, prior, rule)
    method = cfg["method"]
    if method == "auto":
        if not methods:
            raise ValueError(f"no method computes metric {cfg['metric']} for prior "
                             f"{cfg['prior']} with sampler {cfg['sampler']}")
        method = methods[0]
    elif method not in methods:
        raise ValueError(f"method {method} does not apply to this configuration; methods that "
                         f"do: {', '.join(methods) or 'none'} (pushforward: deterministic "
                         f"samplers, tv or kl; samples: w2)")
    check_memory(*memory_needed(cfg, method), device=cfg["device"])
    pert = None
    if cfg["perturbation"] != "none":
        pert = make_perturbation(cfg["perturbation"], cfg["eps"])
    if method == "exact":
        est = exact_distance(prior, rule, cfg["metric"], perturbation=pert)
        interval = "numerical error bound (refinement estimate)"
    elif method == "pushforward":
        from theory.distances.pushforward import pushforward_kl, pushforward_tv  # torch, scipy.stats
        if cfg["metric"] == "tv":
            est = pushforward_tv(prior, rule, cfg["samples"], seed=cfg["seed"],
                                 estimator="one-sided" if isinstance(rule, StageRule) else "tanh")
        else:
            est = pushforward_kl(prior, rule, cfg["samples"], direction="qp", seed=cfg["seed"])
        interval = "95% confidence interval (Monte Carlo)"
    else:
        est = _sample_estimate(cfg, rule)
        interval = ("95% bootstrap interval widened by the noise floor (details.floor); "
                    "details.below_floor says whether the value is above sampling noise")
    out = {"value": est.value, "lower": est.lower, "upper": est.upper, "error": est.error,
           "method": est.method, "method_kind": method, "interval": interval,
           "details": est.details}
    if pert is not None:
        out["injected"] = pert.injected(prior, schedule)
    return out


def _sample_estimate(cfg, rule):
    """The samples method: ``cfg["samples"]`` sampler outputs on ``cfg["device"]`` against as
    many exact draws of q_1 (and as many again for the floor), by
    :func:`theory.sample_distances.sampler_distance`."""
    n, d = cfg["samples"], cfg["d"]
    if cfg["metric"] == "w2" and d > 1 and n > EMD_MAX_POINTS:
        raise ValueError(f"exact OT (w2) on {n} points in d = {d} needs a {n} x {n} cost matrix "
                         f"({8 * n * n / 1e9:.1f} GB) and O(n^3) time: use --samples "
                         f"{EMD_MAX_POINTS} or fewer, or --metric sliced_w2")
    import torch                                    # the sampling paths need torch (and POT)
    from theory.distances.samples import sampler_distance
    dev = torch.device(cfg["device"])
    prior = build_prior(cfg, device=dev)
    extra = {"sliced_w2": {"n_projections": 200}}.get(cfg["metric"], {})
    return sampler_distance(prior, rule, n, metric=cfg["metric"], seed=cfg["seed"],
                            device=dev, **extra)
