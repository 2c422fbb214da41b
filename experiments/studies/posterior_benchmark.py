"""Experiment ``posterior-benchmark``: every posterior sampler of THEORY.md section 7 on every
problem of :mod:`theory.posterior.problems`, at equal NFE budgets, against the exact
posterior (:mod:`theory.posterior.metrics`: TV, W2, sliced W2, MMSE gap, coverage, mode
weights, each with its interval, method and floor).

Tuning: each method's knobs are chosen per problem family on the family's validation
problem (seed 1000, never a test seed) from the small grid ``TUNING_GRID`` (one budget,
``TUNE_NFE``), by the primary distance (TV where the problem is 1-D or 2-D, sliced W2
otherwise); the tuning points are cached in ``results/posterior-benchmark-tuning``, and the
chosen values, the validation problem and its score are stored with every test point.
Benchmark-wide settings (``BASE_KNOBS``): DAPS runs 20 Langevin steps per level instead of the
official 100 (the 10-minute budget of fast mode); everything else starts from the defaults.

Outputs: ``leaderboard.md`` / ``leaderboard.csv`` beside summary.json (per problem, method
and NFE, every metric with its interval and floor), ``figures/posterior_benchmark.png``
(distance against NFE per method and problem) and ``figures/posterior_coverage.png``
(exact posterior mass of each method's central 90% interval).
"""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np

from theory.figures import new_figure, save_figure
from theory.posterior.methods import METHODS
from theory.posterior.problems import (FAMILIES, VALIDATION_SEED, family_of, make_problem,
                                       test_problems, validation_problem)

from ..points.posterior import compute, normalise_config
from ..runtime.store import ResultStore
from ..runtime.sweep import run_points

NAME = "posterior-benchmark"
TUNE_NAME = "posterior-benchmark-tuning"
NORMALISE = normalise_config
SINGLE_THREAD = True
CLAIM = ("Measured against closed-form posteriors at equal numbers of prior-score "
         "evaluations, the asymptotically exact samplers (TDS, MCGdiff, the split-Gibbs "
         "chains) approach the posterior, guidance approximations (DPS and relatives) keep a "
         "bias, and optimisers (RED-diff, DMPlug) return point estimates whose law is not the "
         "posterior; on the Gaussian-mixture benchmark of Cardoso et al. MCGdiff beats DPS in "
         "sliced W2, as that paper reports.")

FAST_FAMILIES = ("bimodal-1d-gaussian", "bimodal-1d-phase", "bimodal-1d-logistic",
                 "random2d-cond30", "mcgdiff-d8-dy1", "mcgdiff-d80-dy2", "inpaint-100")
FULL_FAMILIES = tuple(FAMILIES)
BASE_KNOBS = {"daps": {"langevin_steps": 20}}

# the small documented grid per method (each entry: knob values on top of BASE_KNOBS)
TUNING_GRID = {
    "dps": [{"zeta": z} for z in (0.003, 0.03, 0.3)],
    "score-ald": [{"step_ratio": r} for r in (0.05, 0.2)],
    "diffpir": [{"lam": lam, "zeta": z} for lam in (1.0, 7.0, 50.0) for z in (0.3, 1.0)],
    "pigdm": [{"weighting": w} for w in ("score", "paper")],
    "moment-matching": [{"eta": e} for e in (0.0, 1.0)],
    "red-diff": [{"lam": lam} for lam in (0.05, 0.25, 1.0)],
    "dmplug": [{"lr": lr} for lr in (1e-2, 1e-1)],
    "dmplug-fixed": [{"lr": lr} for lr in (1e-2, 1e-1)],
    "tds": [{"particles": k, "twist_var": v} for k in (4, 16) for v in ("ve", "pigdm")],
    "mcgdiff": [{"particles": k, "ess_threshold": e} for k in (64, 16) for e in (1.0, 0.5)],
    "daps": [{"lr": lr} for lr in (0.1, 0.5)],
    "pnp-dm": [{"rho0": r} for r in (3.0, 10.0)],
    "dpnp": [{"eta_max": e} for e in (0.4, 2.0)],
}
FAST_GRID = {k: v[:2] if k != "diffpir" else [v[1], v[3]] for k, v in TUNING_GRID.items()}
FAST_GRID["dps"] = TUNING_GRID["dps"]


# the figures this study writes (the notebook shows both)
FIGURE_FILES = ("posterior_benchmark.png", "posterior_coverage.png")


def _dim(family):
    return make_problem(f"{family}:0").prior.dim


def settings(fast: bool) -> dict:
    """Fast mode: 7 of the 16 families (one per kind: 1-D x 3 likelihoods, 2-D, the MCGdiff
    benchmark at d = 8 and 80, inpainting in d = 100), budgets 20 and 100, fewer outputs and
    resamples, W2 in 2-D on 400 outputs; full mode: every family (3 seeded problems per
    MCGdiff cell), budgets 50, 200 and 1000."""
    return {"families": FAST_FAMILIES if fast else FULL_FAMILIES,
            "budgets": (20, 100) if fast else (50, 200, 1000),
            "tune_nfe": 20 if fast else 200,
            "test_seeds": {"mcgdiff": 1 if fast else 3, "other": 1},
            "n": (lambda d: (1000 if d <= 2 else 512)) if fast else
                 (lambda d: (4000 if d <= 2 else 2000 if d < 800 else 1000)),
            "n_tune": (lambda d: 300 if d <= 2 else 256) if fast else
                      (lambda d: 1000 if d <= 2 else 500),
            "n_boot": 40 if fast else 100, "ot_boot": 10 if fast else 20,
            "w2_points": 400 if fast else 2000,
            "grid": FAST_GRID if fast else TUNING_GRID}


def _applicable(method, family):
    p = make_problem(f"{family}:0")
    return not (METHODS[method].linear_gaussian_only and not p.lik.linear_gaussian)


def primary(metrics: dict):
    """The ranking distance: TV where it exists (d <= 2), else sliced W2."""
    if metrics is None:
        return None, None
    for name in ("tv", "sliced_w2"):
        m = metrics.get(name)
        if m and m.get("value") is not None:
            return name, m
    return None, None


def tuning_configs(fast: bool) -> list:
    s = settings(fast)
    out = []
    for fam in s["families"]:
        d = _dim(fam)
        for method, grid in s["grid"].items():
            if not _applicable(method, fam):
                continue
            for knobs in grid:
                out.append({"method": method, "problem": validation_problem(fam),
                            "nfe": s["tune_nfe"], "n": s["n_tune"](d), "seed": 1,
                            "knobs": {**BASE_KNOBS.get(method, {}), **knobs},
                            "n_boot": 10, "ot_boot": 10, "role": "tune",
                            "metrics": ["tv"] if d <= 2 else ["sliced_w2"]})
    return out


def prepare(fast: bool, root=None, executor=None) -> dict:
    """Run (or reuse) the tuning grid and choose each method's knobs per family."""
    store = ResultStore(TUNE_NAME, root)
    recs = run_points(store, tuning_configs(fast), desc=TUNE_NAME, compute=compute,
                      executor=executor or "serial", normalise=normalise_config)
    chosen = {}
    for r in recs:
        c = r["config"]
        fam, seed = family_of(c["problem"])
        _, m = primary(r["result"].get("metrics"))
        score = m["value"] if m else math.inf
        key = f"{c['method']}|{fam}"
        entry = chosen.setdefault(key, {"grid": [], "best": None})
        entry["grid"].append({"knobs": c["knobs"], "score": score})
        if entry["best"] is None or score < entry["best"]["score"]:
            entry["best"] = {"knobs": c["knobs"], "score": score, "tuned_on": c["problem"],
                             "seed": seed}
    return {"chosen": chosen, "tuning_points": len(recs),
            "tuning_seconds": float(sum(r.get("seconds", 0.0) for r in recs))}


def configs(fast: bool, ctx=None) -> list:
    ctx = ctx if ctx is not None else prepare(fast)
    s = settings(fast)
    out = []
    for fam in s["families"]:
        d = _dim(fam)
        k = s["test_seeds"]["mcgdiff" if fam.startswith("mcgdiff") else "other"]
        for prob in test_problems(fam, k):
            for method in METHODS:
                if not _applicable(method, fam):
                    continue
                best = ctx["chosen"][f"{method}|{fam}"]["best"]
                for nfe in s["budgets"]:
                    out.append({"method": method, "problem": prob, "nfe": nfe, "n": s["n"](d),
                                "seed": 0, "knobs": best["knobs"], "n_boot": s["n_boot"],
                                "ot_boot": s["ot_boot"], "w2_points": s["w2_points"],
                                "role": "test",
                                "tuned_on": best["tuned_on"], "tuning_score": best["score"]})
    return out


# --------------------------------------------------------------------------------------
# Summary, leaderboard, checks
# --------------------------------------------------------------------------------------

def _slim(m):
    if m is None or m.get("value") is None:
        return None if m is None else {"value": None, "why": m.get("why")}
    return {k: m[k] for k in ("value", "lower", "upper", "floor", "floor_upper", "below_floor",
                              "method")} | ({"mass_90": m["details"]["mass_of_method_interval_90"],
                                             "mass_90_ci": m["details"].get("mass_90_interval")}
                                            if "mass_of_method_interval_90" in m.get("details", {})
                                            else {})


def summarise(records, fast: bool) -> dict:
    rows = []
    for r in records:
        c, res = r["config"], r["result"]
        fam, seed = family_of(c["problem"])
        row = {"problem": c["problem"], "family": fam, "seed": seed, "method": c["method"],
               "nfe_budget": c["nfe"], "n": c["n"], "knobs": c["knobs"],
               "tuned_on": c.get("tuned_on"), "tuning_score": c.get("tuning_score"),
               "seconds": r.get("seconds")}
        if res.get("failed"):
            row["failed"] = res["failed"]
        else:
            row.update(nfe=res["sampler"]["nfe"], particles=res["sampler"]["particles"],
                       point_estimate=res["point_estimate"], notes=res["sampler"]["notes"],
                       posterior=res["posterior"],
                       metrics={k: _slim(v) for k, v in res["metrics"].items()})
        rows.append(row)
    s = settings(fast)
    na = [{"method": m, "family": f, "why": f"{m} needs a linear-Gaussian likelihood"}
          for f in s["families"] for m in METHODS if not _applicable(m, f)]
    checks = _checks(rows, max(s["budgets"]))
    seeds_ok = all(r["seed"] < VALIDATION_SEED for r in rows) and \
        all(family_of(r["tuned_on"])[1] >= VALIDATION_SEED for r in rows if r.get("tuned_on"))
    return {"rows": rows, "not_applicable": na, "budgets": list(s["budgets"]),
            "families": list(s["families"]), "checks": checks, "mcgdiff_vs_dps": _mcg_vs_dps(rows),
            "tuning_seeds_differ_from_test_seeds": bool(seeds_ok),
            "base_knobs": BASE_KNOBS, "tuning_grid": {k: v for k, v in s["grid"].items()},
            "compute_seconds": float(sum(r.get("seconds") or 0 for r in rows)), "fits": []}


def _checks(rows, top):
    """Per problem, at the largest budget: best and worst method by the primary distance,
    whether their intervals separate, and per metric whether the floor lies below the gap
    between the best and the worst value."""
    out = []
    for prob in sorted({r["problem"] for r in rows}):
        rs = [r for r in rows if r["problem"] == prob and r["nfe_budget"] == top and r.get("metrics")]
        scored = [(primary(r["metrics"]), r) for r in rs]
        scored = [((n, m), r) for (n, m), r in scored if m is not None]
        if len(scored) < 2:
            continue
        name = scored[0][0][0]
        scored.sort(key=lambda q: q[0][1]["value"])
        (_, best), rb = scored[0]
        (_, worst), rw = scored[-1]
        floors = {}
        for met in ("tv", "w2", "sliced_w2", "mmse_gap", "coverage_error", "mode_weight_error"):
            vals = [(r["metrics"][met], r["method"]) for r in rs
                    if r["metrics"].get(met) and r["metrics"][met].get("value") is not None]
            if len(vals) < 2:
                continue
            vals.sort(key=lambda q: q[0]["value"])
            gap = vals[-1][0]["value"] - vals[0][0]["value"]
            fl = max(v[0]["floor_upper"] for v in vals)
            floors[met] = {"best": vals[0][1], "worst": vals[-1][1], "gap": gap,
                           "floor_upper_max": fl, "floor_below_gap": bool(fl < gap),
                           "separated": bool(vals[-1][0]["lower"] > vals[0][0]["upper"])}
        out.append({"problem": prob, "nfe": top, "metric": name, "best": rb["method"],
                    "best_value": best["value"], "best_interval": [best["lower"], best["upper"]],
                    "worst": rw["method"], "worst_value": worst["value"],
                    "worst_interval": [worst["lower"], worst["upper"]],
                    "separated": bool(worst["lower"] > best["upper"]), "per_metric": floors})
    return out


def _mcg_vs_dps(rows):
    out = []
    for r in rows:
        if not r["family"].startswith("mcgdiff") or r["method"] != "mcgdiff" or not r.get("metrics"):
            continue
        dps = [q for q in rows if q["problem"] == r["problem"] and q["method"] == "dps"
               and q["nfe_budget"] == r["nfe_budget"] and q.get("metrics")]
        if not dps:
            continue
        a, b = r["metrics"]["sliced_w2"], dps[0]["metrics"]["sliced_w2"]
        out.append({"problem": r["problem"], "nfe": r["nfe_budget"], "mcgdiff": a["value"],
                    "mcgdiff_interval": [a["lower"], a["upper"]], "dps": b["value"],
                    "dps_interval": [b["lower"], b["upper"]],
                    "mcgdiff_better": bool(a["value"] < b["value"]),
                    "separated": bool(a["upper"] < b["lower"] or b["upper"] < a["lower"])})
    return out


def _cell(m):
    if m is None:
        return "-"
    if m.get("value") is None:
        return "n/a"
    s = f"{m['value']:.3g} [{m['lower']:.3g}, {m['upper']:.3g}]"
    return s + ("*" if m.get("below_floor") else "")


METRIC_COLS = ("tv", "w2", "sliced_w2", "mmse_gap", "coverage_error", "mode_weight_error")


def tables(summary) -> dict:
    md = ["# Posterior-sampler leaderboard", "",
          "Every value is the metric against the exact posterior with its 95% interval; `*`: "
          "not distinguishable from the estimator's floor (the same statistic for exact "
          "posterior draws). Rows: method at each NFE budget (prior-score evaluations per "
          "output). Knobs tuned per family on its validation problem (seed >= "
          f"{VALIDATION_SEED}). Point-estimate methods (RED-diff, DMPlug) are not posterior "
          "samplers: their distances say how far their output law is from the posterior.", ""]
    for prob in sorted({r["problem"] for r in summary["rows"]}):
        rs = [r for r in summary["rows"] if r["problem"] == prob]
        post = next((r["posterior"] for r in rs if r.get("posterior")), "")
        md += [f"## {prob}", "", f"Exact posterior: {post}.", "",
               "| method | NFE | " + " | ".join(METRIC_COLS) + " |",
               "|---|---|" + "---|" * len(METRIC_COLS)]
        for r in sorted(rs, key=lambda q: (list(METHODS).index(q["method"]), q["nfe_budget"])):
            if r.get("failed"):
                md.append(f"| {r['method']} | {r['nfe_budget']} | failed: {r['failed']} |")
                continue
            md.append(f"| {r['method']} | {r['nfe']:.4g} | "
                      + " | ".join(_cell(r["metrics"].get(k)) for k in METRIC_COLS) + " |")
        fl = {}
        for r in rs:
            for k in METRIC_COLS:
                m = (r.get("metrics") or {}).get(k)
                if m and m.get("value") is not None:
                    fl[k] = max(fl.get(k, -math.inf), m["floor_upper"])
        md.append("| floor (q97.5, exact draws) | | " + " | ".join(
            f"{fl[k]:.3g}" if k in fl else "-" for k in METRIC_COLS) + " |")
        md.append("")
    if summary["not_applicable"]:
        md += ["Not applicable: " + "; ".join(f"{q['method']} on {q['family']} ({q['why']})"
                                              for q in summary["not_applicable"]), ""]
    md += ["## Best and worst method per problem (largest budget)", "",
           "| problem | metric | best | worst | intervals separate | floors below the gaps |",
           "|---|---|---|---|---|---|"]
    for c in summary["checks"]:
        bad = [k for k, v in c["per_metric"].items() if not v["floor_below_gap"]]
        md.append(f"| {c['problem']} | {c['metric']} | {c['best']} {c['best_value']:.3g} "
                  f"[{c['best_interval'][0]:.3g}, {c['best_interval'][1]:.3g}] | {c['worst']} "
                  f"{c['worst_value']:.3g} [{c['worst_interval'][0]:.3g}, "
                  f"{c['worst_interval'][1]:.3g}] | {'yes' if c['separated'] else 'NO'} | "
                  + ("all" if not bad else "not for " + ", ".join(bad)) + " |")
    md += ["", "## MCGdiff against DPS (sliced W2)", "",
           "| problem | NFE | MCGdiff | DPS | MCGdiff better | separated |", "|---|---|---|---|---|---|"]
    for q in summary["mcgdiff_vs_dps"]:
        md.append(f"| {q['problem']} | {q['nfe']} | {q['mcgdiff']:.3g} [{q['mcgdiff_interval'][0]:.3g}, "
                  f"{q['mcgdiff_interval'][1]:.3g}] | {q['dps']:.3g} [{q['dps_interval'][0]:.3g}, "
                  f"{q['dps_interval'][1]:.3g}] | {q['mcgdiff_better']} | {q['separated']} |")
    md += ["", "## Tuned knobs (validation problem, score)", "", "| problem family | method | knobs |",
           "|---|---|---|"]
    seen = set()
    for r in summary["rows"]:
        key = (r["family"], r["method"])
        if key in seen or not r.get("tuned_on"):
            continue
        seen.add(key)
        md.append(f"| {r['family']} | {r['method']} | {json.dumps(r['knobs'])} on {r['tuned_on']} "
                  f"(score {r['tuning_score']:.3g}) |")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["problem", "family", "method", "nfe_budget", "nfe", "particles", "metric", "value",
                "lower", "upper", "floor", "floor_upper", "below_floor", "point_estimate",
                "knobs", "tuned_on", "metric_method"])
    for r in summary["rows"]:
        for k in METRIC_COLS:
            m = (r.get("metrics") or {}).get(k)
            if m is None or m.get("value") is None:
                continue
            w.writerow([r["problem"], r["family"], r["method"], r["nfe_budget"], r["nfe"],
                        r["particles"], k, m["value"], m["lower"], m["upper"], m["floor"],
                        m["floor_upper"], m["below_floor"], r["point_estimate"],
                        json.dumps(r["knobs"]), r["tuned_on"], m["method"]])
    return {"leaderboard.md": "\n".join(md) + "\n", "leaderboard.csv": buf.getvalue()}


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------

def _colours():
    """One fixed colour per method (same in every panel and figure)."""
    import seaborn as sns
    pal = list(sns.color_palette("tab10", 10)) + ["#000000", "#000080", "#ff00ff"]
    return {m: pal[i % len(pal)] for i, m in enumerate(METHODS)}


def figure(summary, figures_dir="figures"):
    rows = [r for r in summary["rows"] if r.get("metrics")]
    probs = sorted({r["problem"] for r in rows})
    cols = _colours()
    nc = min(5, len(probs))
    nr = -(-len(probs) // nc)
    fig, axes = new_figure(nr, nc, figsize=(3.6 * nc, 3.0 * nr + 1.2))
    for i, prob in enumerate(probs):
        ax = axes[i // nc][i % nc]
        rs = [r for r in rows if r["problem"] == prob]
        metric = None
        floor = 0.0
        curves = []
        for method in METHODS:
            pts = sorted((r for r in rs if r["method"] == method), key=lambda q: q["nfe_budget"])
            pts = [(r, primary(r["metrics"])) for r in pts]
            pts = [(r, n, m) for r, (n, m) in pts if m is not None]
            if pts:
                metric = pts[0][1]
                floor = max(floor, max(m["floor_upper"] for _, _, m in pts))
                curves.append((method, pts))
        vals = [m["value"] for r in rs for m in [primary(r["metrics"])[1]] if m and m["value"] > 0]
        bottom = max(min(vals + [floor]) / 3, 1e-4) if vals else 1e-3
        for method, pts in curves:
            x = np.array([r["nfe_budget"] for r, _, _ in pts], float)
            y = np.array([m["value"] for _, _, m in pts])
            # a lower end below the panel (e.g. 0 on the log axis) is drawn to its bottom
            lo = np.maximum(np.array([m["lower"] for _, _, m in pts]), bottom)
            hi = np.array([m["upper"] for _, _, m in pts])
            ls = "--" if pts[0][0]["point_estimate"] else "-"
            ax.errorbar(x * (1 + 0.03 * (list(METHODS).index(method) - 6)), y,
                        yerr=[np.maximum(y - lo, 0), hi - y], color=cols[method], ls=ls,
                        marker="o", ms=3, lw=1, capsize=2, label=method)
        ax.set_yscale("log")
        ax.axhspan(bottom, max(floor, bottom), color="0.85", zorder=0)
        ax.set_ylim(bottom=bottom)
        ax.set_xscale("log")
        ax.set_xticks(summary["budgets"])
        ax.set_xticklabels([str(b) for b in summary["budgets"]])
        ax.minorticks_off()
        ax.set_title(f"{prob} ({metric})", fontsize=8)
        if metric is not None:
            ax.set_ylabel(f"{metric} to the exact posterior", fontsize=7)
        ax.set_xlabel("NFE per output", fontsize=7)
        ax.tick_params(labelsize=7)
    for j in range(len(probs), nr * nc):
        axes[j // nc][j % nc].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=7, fontsize=7, frameon=False)
    fig.suptitle("Which posterior samplers approach the exact posterior as NFE grows: distance "
                 "(TV in d <= 2, sliced W2 above) with 95% intervals; grey: estimator floor; "
                 "dashed: point estimates (not posterior samplers); bars whose lower end lies below a panel "
                 "end at its bottom", fontsize=9)
    p1 = save_figure(fig, f"{figures_dir}/posterior_benchmark.png")

    top = max(summary["budgets"])
    fig, axes = new_figure(nr, nc, figsize=(3.6 * nc, 3.0 * nr + 1.0))
    for i, prob in enumerate(probs):
        ax = axes[i // nc][i % nc]
        rs = [r for r in rows if r["problem"] == prob and r["nfe_budget"] == top]
        for j, method in enumerate(METHODS):
            r = next((q for q in rs if q["method"] == method), None)
            m = None if r is None else r["metrics"].get("coverage_error")
            if not m or m.get("value") is None:
                continue
            mass = m["mass_90"]
            ci = m.get("mass_90_ci") or [mass, mass]
            ax.errorbar([j], [mass], yerr=[[mass - ci[0]], [ci[1] - mass]], color=cols[method],
                        marker="s" if r["point_estimate"] else "o", ms=4, capsize=2)
        ax.axhline(0.9, color="k", lw=0.8, ls=":")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xticks(range(len(METHODS)))
        ax.set_xticklabels(list(METHODS), rotation=90, fontsize=6)
        ax.set_title(prob, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        if i % nc == 0:
            ax.set_ylabel("posterior mass of the 90% interval", fontsize=7)
    for j in range(len(probs), nr * nc):
        axes[j // nc][j % nc].axis("off")
    fig.suptitle(f"Calibration at NFE = {top}: the exact posterior mass of each method's central "
                 "90% interval (mean over coordinates, 95% interval) is 0.9 only for calibrated "
                 "samplers (dotted); squares: point estimates; missing: not applicable", fontsize=9)
    p2 = save_figure(fig, f"{figures_dir}/posterior_coverage.png")
    return [p1, p2]


def reading(summary) -> str:
    ch = summary["checks"]
    sep = sum(c["separated"] for c in ch)
    mv = summary["mcgdiff_vs_dps"]
    better = sum(q["mcgdiff_better"] for q in mv)
    best = {}
    for c in ch:
        best[c["best"]] = best.get(c["best"], 0) + 1
    lead = ", ".join(f"{k} ({v})" for k, v in sorted(best.items(), key=lambda q: -q[1]))
    return (f"At the largest budget the best and the worst method are separated by their "
            f"intervals on {sep} of {len(ch)} problems; best method per problem: {lead}. "
            f"MCGdiff has a lower sliced W2 than DPS in {better} of {len(mv)} "
            f"(problem, budget) pairs of the Gaussian-mixture benchmark.")
