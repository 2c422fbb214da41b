"""``diffrates report``: the tightness report, one row per bound of THEORY.md section 3, and
one per low-rank theorem of section 7 (ScaledGD).

For each bound it sets the exponents the bound states (in T, in d or k, in eps_score; for
the low-rank rows, of the iterations to a fixed accuracy in the condition number kappa)
beside the exponents measured by the registered experiments (with their 95% intervals and
fit ranges) and gives a verdict per variable:

* ``consistent``: the bound's exponent lies in the measured interval;
* ``loose by x^a``: the measured curve is better than the bound by the power ``a`` (the
  interval lies entirely on the good side: faster decay in T, slower growth in d or kappa,
  higher order in eps as eps -> 0);
* ``violated``: the measured curve is worse than the bound (interval entirely on the bad
  side) - a bug here or a wrong constant there.

The theorems ignore logarithmic factors; in T the verdict uses the fit of TV / log(T)^k
(k = 1 for stochastic, 2 for deterministic samplers, the logs the li schedule carries; k = p
for an order-p solver, whose steps in lambda are about c1 log(T)/(2T)) and both exponents are
shown. Rows that no experiment measures yet are listed as such.
The report reads the experiments' cached summaries; with ``compute=True`` (``diffrates
report --compute``) it runs the experiments whose results are missing, otherwise their cells
say ``not computed`` and ``report["missing"]`` names them.

Where a row's curve is found: each variable reads the experiment ``sources[var]`` (default
:data:`SOURCES`); a row with ``select[var]`` (a dict of summary-fit fields and values) takes
the fit whose fields match it, and otherwise the diffusion rows' rule in :func:`_pick`
(by ``sampler`` and prior) applies.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from theory.formatting import format_exponent
from theory.rates import local_slopes, verdict

from . import registry
from .store import atomic_write_json, atomic_write_text, default_root, warn

__all__ = ["build_report", "missing_summaries", "BOUNDS"]

# (bound, sampler kind, statement, exponents, sampler used, prior family, sources)
BOUNDS = [
    {"result": "Li-Wei-Chen-Chi 2024", "kind": "deterministic",
     "bound": "d^2/T + d^6/T^2 + sqrt(d) eps_score + d eps_Jacobi",
     "exponents": {"T": -1.0, "d": 2.0, "eps": 1.0}, "sampler": "li-ode"},
    {"result": "Li-Wei-Chen-Chi 2024", "kind": "stochastic",
     "bound": "d^2/sqrt(T) + sqrt(d) eps_score",
     "exponents": {"T": -0.5, "d": 2.0, "eps": 1.0}, "sampler": "li-sde"},
    {"result": "Li & Yan 2024 (ICLR'25)", "kind": "stochastic",
     "bound": "d/T + eps_score sqrt(log T)",
     "exponents": {"T": -1.0, "d": 1.0, "eps": 1.0}, "sampler": "li-sde"},
    {"result": "Li-Wei-Chi-Chen 2024 (sharp ODE)", "kind": "deterministic",
     "bound": "d/T + sqrt(d) eps_score + d eps_Jacobi (T >> d^2)",
     "exponents": {"T": -1.0, "d": 1.0, "eps": 1.0}, "sampler": "li-ode"},
    {"result": "Li & Yan 2024 (NeurIPS)", "kind": "adaptive coefficients",
     "bound": "k^2/sqrt(T), independent of the ambient d",
     "exponents": {"T": -0.5, "ambient d": 0.0}, "sampler": "li-yan",
     "sources": {"T": "rate-vs-ambient-d"}},
    {"result": "Li & Yan v2", "kind": "adaptive coefficients",
     "bound": "k/T, independent of the ambient d",
     "exponents": {"T": -1.0, "ambient d": 0.0}, "sampler": "li-yan",
     "sources": {"T": "rate-vs-ambient-d"}},
    {"result": "Li et al. ICML 2024", "kind": "accelerated SDE", "bound": "1/T",
     "exponents": {"T": -1.0}, "sampler": "accel-sde"},
    {"result": "Li et al. ICML 2024", "kind": "accelerated ODE", "bound": "1/T^2",
     "exponents": {"T": -2.0}, "sampler": "accel-ode"},
    # THEORY.md section 7: iterations to a relative error of 1e-10 on Gaussian matrix
    # sensing in the RIP regime of the theorem (m = 80nr), over seeded problems
    {"result": "Tong-Ma-Chi 2021 (JMLR)", "kind": "ScaledGD, low-rank sensing",
     "bound": "iterations to eps: O(log 1/eps), free of kappa (rate 1 - 0.6 eta)",
     "exponents": {"kappa": 0.0}, "sampler": "scaledgd",
     "select": {"kappa": {"problem": "sensing", "sampling": "rip", "algorithm": "scaledgd",
                          "vs": "kappa"}}},
    {"result": "Tong-Ma-Chi 2021 (JMLR)", "kind": "GD baseline, low-rank sensing",
     "bound": "iterations to eps: O(kappa log 1/eps)",
     "exponents": {"kappa": 1.0}, "sampler": "gd",
     "select": {"kappa": {"problem": "sensing", "sampling": "rip", "algorithm": "gd",
                          "vs": "kappa"}}},
    # higher-order solvers (theory.stages), measured from q_T (no initialisation error); the
    # orders their papers state; the li schedule's steps carry log(T)^p (log_k = p)
    {"result": "Karras et al. 2022 (EDM, arXiv:2206.00364)", "kind": "Heun, order 2",
     "bound": "1/T^2 (from q_T)", "exponents": {"T": -2.0}, "sampler": "heun", "log_k": 2},
    {"result": "classical Runge-Kutta (as in PNDM, Liu et al. 2022)", "kind": "RK4, order 4",
     "bound": "1/T^4 (from q_T)", "exponents": {"T": -4.0}, "sampler": "rk4", "log_k": 4},
    {"result": "Lu et al. 2022 (DPM-Solver++, arXiv:2211.01095)", "kind": "2M, order 2",
     "bound": "1/T^2 (from q_T)", "exponents": {"T": -2.0}, "sampler": "dpm++2m", "log_k": 2},
    {"result": "Lu et al. 2022 (DPM-Solver++, arXiv:2211.01095)", "kind": "3M, order 3",
     "bound": "1/T^3 (from q_T)", "exponents": {"T": -3.0}, "sampler": "dpm++3m", "log_k": 3},
]


SOURCES = {"T": "rate-vs-T", "d": "rate-vs-d", "eps": "score-error",
           "ambient d": "rate-vs-ambient-d", "kappa": "scaledgd-kappa"}


def _summary(name, root, fast, executor, compute):
    """The experiment's summary.json; if it is missing or unreadable (one warning), a run of
    it (which reuses its cached points) when ``compute``, else ``None``."""
    path = Path(root) / name / "summary.json"
    if path.exists():
        try:
            summary = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            summary = f"cannot be read ({type(exc).__name__})"
        if isinstance(summary, dict):
            return summary
        warn(f"{path} " + (summary if isinstance(summary, str) else "is not a summary")
             + ("; rebuilding it from the cached points" if compute else
                "; its cells say 'not computed' (--compute rebuilds it from the cached points)"))
    return registry.run(name, fast, root, executor=executor) if compute else None


def missing_summaries(root=None) -> list:
    """The experiments the report needs whose summary.json is not there (they would run)."""
    root = Path(root) if root is not None else default_root()
    names = {b.get("sources", {}).get(v, SOURCES[v]) for b in BOUNDS for v in b["exponents"]}
    return sorted(n for n in names if not (root / n / "summary.json").exists())


def _pick(summary, var, sampler, select=None):
    """The fit to use for variable ``var`` and ``sampler`` (first matching curve); with
    ``select`` (field -> value), the first fit whose fields match every item."""
    if select is not None:
        fits = [f for f in summary.get("fits", []) if "exponent" in f.get("fit", {})
                and all(f.get(k) == v for k, v in select.items())]
        return fits[0] if fits else None
    fits = [f for f in summary.get("fits", []) if f.get("sampler") == sampler
            and "exponent" in f.get("fit", {})]
    if var == "T":
        fits = [f for f in fits if f.get("vs") == "T"] or \
            [f for f in fits if f.get("prior") == "bimodal" and f.get("d") == 1] or \
            [f for f in fits if f.get("d") == 1]
    elif var == "d":
        fits = [f for f in fits if f.get("prior") == "bimodal"]
    elif var == "eps":
        fits = [f for f in fits if f.get("d") == 1]
    elif var == "ambient d":
        fits = [f for f in fits if f.get("vs") == "d"]
    return fits[0] if fits else None


def _verdict(b, lo, hi, var, local=None):
    """Compare a bound TV <~ x^b with a measured exponent interval [lo, hi].

    T, d and kappa grow (a smaller exponent is better); eps shrinks to 0 (a larger one is
    better). ``local``: the local slopes over the fit range (in T), so that a fit the
    figure calls pre-asymptotic is not read as a violation here either.
    """
    return verdict(b, (lo, hi), larger_is_better=(var == "eps"), var=var, local=local)


def build_report(root=None, fast=False, executor="serial", compute=False) -> dict:
    """The report from the summaries under ``root``; ``compute``: run the missing ones (in
    fast mode with ``fast``) on ``executor``, else name them in ``report["missing"]``."""
    root = Path(root) if root is not None else default_root()
    cache = {}
    rows, missing = [], []
    for bnd in BOUNDS:
        if bnd["sampler"] is None:
            missing.append(bnd)
            continue
        row = {"result": bnd["result"], "kind": bnd["kind"], "bound": bnd["bound"],
               "sampler": bnd["sampler"], "cells": []}
        for var, b in bnd["exponents"].items():
            name = bnd.get("sources", {}).get(var, SOURCES[var])
            if name not in cache:
                cache[name] = _summary(name, root, fast, executor, compute)
            if cache[name] is None:
                row["cells"].append({"var": var, "bound": b, "measured": None,
                                     "experiment": name, "verdict": "not computed"})
                continue
            select = bnd.get("select", {}).get(var)
            f = _pick(cache[name], var, bnd["sampler"], select)
            if f is None:
                row["cells"].append({"var": var, "bound": b, "measured": None,
                                     "verdict": "not measured"})
                continue
            fit = f["fit"]
            cell = {"var": var, "bound": b, "experiment": name,
                    "prior": f.get("prior"), "measured": fit["exponent"], "ci": fit["ci"],
                    "range": fit["x_range"]}
            if select is not None:
                cell["curve"] = select
            lo, hi = fit["ci"]
            local = None
            if var == "T" and f.get("log_corrected_fits"):
                k = bnd.get("log_k", 2 if bnd["kind"] in ("deterministic", "accelerated ODE")
                            else 1)
                lf = f["log_corrected_fits"][f"tv_over_logT^{k}"]
                cell["log_corrected"] = {"k": k, "exponent": lf["exponent"], "ci": lf["ci"]}
                lo, hi = lf["ci"]
                if "T" in f and "tv" in f and "x_range" in lf:
                    local = [sl[2] for sl in local_slopes(f["T"], f["tv"], k, lf["x_range"])]
            cell["verdict"] = _verdict(b, lo, hi, "T" if var == "T" else var, local)
            row["cells"].append(cell)
        rows.append(row)
    report = {"rows": rows, "missing": sorted(n for n, v in cache.items() if v is None),
              "not_measured": [{"result": m["result"], "kind": m["kind"],
                                             "bound": m["bound"], "why": m["why"]}
                                            for m in missing],
              "note": ("exponents: TV ~ x^a fitted on log-log axes; intervals are 95%; in T the "
                       "verdict uses TV/log(T)^k (k = 2 deterministic, 1 stochastic and adaptive); in eps the fit is of "
                       "TV - TV(exact score); an exponent within 0.05 of the bound's counts as "
                       "consistent (log factors); low-rank rows: iterations to a relative "
                       "error of 1e-10 ~ kappa^a on matrix sensing at m = 80nr, interval over "
                       "seeded problems")}
    report["posterior_samplers"] = _posterior_section(root)
    out = root / "report"
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", to_markdown(report))   # concurrent runs: no torn files
    atomic_write_text(out / "report.csv", to_csv(report))
    report["files"] = [str(out / "report.md"), str(out / "report.csv")]
    return report


POSTERIOR = "posterior-benchmark"


def _posterior_section(root):
    """The posterior-sampler benchmark's verdicts (not rate bounds: best and worst method
    per problem with separated intervals, MCGdiff against DPS), read from its cached summary
    when it has been run (``diffrates run posterior-benchmark``)."""
    path = Path(root) / POSTERIOR / "summary.json"
    if not path.exists():
        return None
    s = json.loads(path.read_text())
    return {"fast": s.get("fast"), "checks": s.get("checks", []),
            "mcgdiff_vs_dps": s.get("mcgdiff_vs_dps", []), "tables": s.get("tables", []),
            "tuning_seeds_differ_from_test_seeds": s.get("tuning_seeds_differ_from_test_seeds")}


def _posterior_markdown(sec) -> list:
    if not sec:
        return []
    lines = ["", f"Posterior samplers against exact posteriors ({POSTERIOR}"
             + (", fast mode" if sec["fast"] else "") + "; leaderboard: "
             + ", ".join(sec["tables"]) + "):", "",
             "| problem | distance | best | worst | separated (confirmation run) |",
             "|---|---|---|---|---|"]
    for c in sec["checks"]:
        if c.get("best_value") is None:                 # no confirmation run: no verdict
            lines.append(f"| {c['problem']} | {c['metric']} at NFE {c['nfe']} | {c['best']} | "
                         f"{c['worst']} | not confirmed |")
            continue
        lines.append(f"| {c['problem']} | {c['metric']} at NFE {c['nfe']} | {c['best']} "
                     f"{c['best_value']:.3g} | {c['worst']} {c['worst_value']:.3g} | "
                     f"{'yes' if c['separated'] else 'no'} |")
    mv = sec["mcgdiff_vs_dps"]
    if mv:
        lines.append("")
        lines.append(f"MCGdiff has a lower sliced W2 than DPS on {sum(q['mcgdiff_better'] for q in mv)} "
                     f"of {len(mv)} (problem, budget) pairs of the MCGdiff benchmark "
                     f"({sum(q['mcgdiff_better'] and q['separated'] for q in mv)} with separated intervals).")
    return lines


def _cell_text(c):
    if c.get("measured") is None:
        why = ("not computed (no results for " + c["experiment"] + ")"
               if c["verdict"] == "not computed" else "not measured")
        return f"{c['var']}: bound {c['bound']:+g}, {why}"
    s = (f"{c['var']}: {format_exponent(c['measured'], c['ci'])} over "
         f"[{c['range'][0]:g}, {c['range'][1]:g}]")
    if "log_corrected" in c:
        lc = c["log_corrected"]
        s += f"; /log^{lc['k']}: {format_exponent(lc['exponent'], lc['ci'])}"
    return s + f"; bound {c['bound']:+g}: {c['verdict']}"


def to_markdown(report) -> str:
    lines = ["| result | sampler / algorithm | bound | measured exponents (95% CI, fit range) "
             "and verdicts |",
             "|---|---|---|---|"]
    for r in report["rows"]:
        cells = "<br>".join(_cell_text(c) for c in r["cells"])
        lines.append(f"| {r['result']} ({r['kind']}) | {r['sampler']} | {r['bound']} | {cells} |")
    if report.get("missing"):
        lines.append("")
        lines.append("Not computed (no cached results): " + ", ".join(report["missing"])
                     + "; `diffrates report --compute` runs them.")
    if report["not_measured"]:
        lines.append("")
        lines.append("Not measured yet: " + "; ".join(
            f"{m['result']} ({m['kind']}, {m['bound']}): {m['why']}"
            for m in report["not_measured"]))
    lines.append("")
    lines.append(report["note"])
    lines += _posterior_markdown(report.get("posterior_samplers"))
    return "\n".join(lines) + "\n"


def to_csv(report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["result", "kind", "sampler", "bound", "variable", "bound_exponent",
                "measured_exponent", "ci_low", "ci_high", "fit_from", "fit_to",
                "log_corrected_exponent", "verdict", "experiment"])
    for r in report["rows"]:
        for c in r["cells"]:
            lc = c.get("log_corrected", {})
            w.writerow([r["result"], r["kind"], r["sampler"], r["bound"], c["var"], c["bound"],
                        c.get("measured"), *(c.get("ci") or [None, None]),
                        *(c.get("range") or [None, None]), lc.get("exponent"), c["verdict"],
                        c.get("experiment")])
    for m in report["not_measured"]:
        w.writerow([m["result"], m["kind"], None, m["bound"], None, None, None, None, None,
                    None, None, None, "not measured: " + m["why"], None])
    return buf.getvalue()
