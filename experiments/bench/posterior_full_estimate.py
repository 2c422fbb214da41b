"""``python -m experiments.bench.posterior_full_estimate RESULTS``: an *estimate* (not a
measurement) of the CPU time of ``diffrates run posterior-benchmark`` in full mode, from the
per-point seconds of a finished fast run cached under RESULTS.

Model: each full-mode point is matched to a fast-mode point of the same method (same family,
or the nearest one run in fast mode: the same kind of problem, d = 80 for d = 800) and its
times are scaled: sampling by NFE x n x d, metrics by n x bootstrap resamples x d, and in
2-D the metrics (dominated by the exact W2 of ``w2_points`` points, network simplex) by
(w2_points ratio)^EXP x OT resamples, EXP = 2 and 3 bracketing the solver's growth. The
confirmation points are estimated as two average methods per problem at the largest budget.
"""
from __future__ import annotations

import glob
import json
import sys
from pathlib import Path
from statistics import mean

from experiments.studies import posterior_benchmark as pb


def _analogue(fam, fast_fams):
    if fam in fast_fams:
        return fam
    if fam.startswith("random2d"):
        return "random2d-cond30"
    if fam.startswith("mcgdiff-d8-"):
        return "mcgdiff-d8-dy1"
    if fam.startswith("mcgdiff"):
        return "mcgdiff-d80-dy2"
    if fam == "denoise-100":
        return "inpaint-100"
    raise ValueError(f"no fast analogue for {fam}")


def _points(folder):
    out = []
    for p in glob.glob(str(Path(folder) / "points" / "*.json")):
        d = json.loads(Path(p).read_text())
        sec = d["result"].get("seconds")
        if isinstance(sec, dict) and "metrics" in sec:
            out.append((d["config"], sec))
    return out


def estimate(results, exp=2.0) -> dict:
    fast_fams = pb.settings(True)["families"]
    fs, full = pb.settings(True), pb.settings(False)
    tune = _points(Path(results) / pb.TUNE_NAME)
    test = [q for q in _points(Path(results) / pb.NAME) if q[0].get("role") == "test"]

    def match(pool, method, fam):
        a = _analogue(fam, fast_fams)
        return [q for q in pool if q[0]["method"] == method and q[0]["problem"].startswith(a + ":")]

    def scaled(cfg_f, sec, nfe, n, d_ratio, n_boot, ot_boot, w2_points, dim):
        s = sec["sampling"] * nfe / cfg_f["nfe"] * n / cfg_f["n"] * d_ratio
        if dim == 2:
            m = sec["metrics"] * (w2_points / cfg_f["w2_points"]) ** exp * ot_boot / cfg_f["ot_boot"]
        else:
            m = sec["metrics"] * n / cfg_f["n"] * max(n_boot / cfg_f["n_boot"],
                                                      ot_boot / cfg_f["ot_boot"]) * d_ratio
        return s + m

    total = {"tuning": 0.0, "screening": 0.0, "confirmation": 0.0}
    for fam in full["families"]:
        d = pb._dim(fam)
        dr = 10.0 if d == 800 else 1.0
        k = full["test_seeds"]["mcgdiff" if fam.startswith("mcgdiff") else "other"]
        per_method_top = []
        for method, grid in full["grid"].items():
            if not pb._applicable(method, fam):
                continue
            tp = match(tune, method, fam)
            if tp:
                c, sec = tp[0]
                total["tuning"] += len(grid) * mean(
                    scaled(c, s, full["tune_nfe"], full["n_tune"](d), dr, 10, 10,
                           full["n_tune"](d), d) for c, s in tp)
            sp = [q for q in match(test, method, fam) if q[0]["nfe"] == max(fs["budgets"])]
            if sp:
                c, sec = sp[0]
                for nfe in full["budgets"]:
                    total["screening"] += k * scaled(c, sec, nfe, full["n"](d), dr, full["n_boot"],
                                                     full["ot_boot"], full["w2_points"], d)
                per_method_top.append(scaled(
                    c, sec, max(full["budgets"]), pb.CONFIRM_N_FACTOR * full["n"](d), dr,
                    full["confirm"]["n_boot"], pb.CONFIRM_OT_BOOT,
                    full["w2_points"], d))
        if per_method_top:
            total["confirmation"] += k * 2 * mean(per_method_top)
    total["total"] = sum(total.values())
    return total


if __name__ == "__main__":
    for e in (2.0, 3.0):
        t = estimate(sys.argv[1], e)
        print(f"W2 exponent {e:g}: " + ", ".join(f"{k} {v / 3600:.2f} CPU h" for k, v in t.items()))
