"""The low-rank studies (scaledgd-kappa, -noise, -stepsize): their summaries carry the
numbers the tightness report and the readings use, on a tiny configuration.

The kappa grid is cut to kappa in {1, 5, 20} and two seeds, at n = 20, r = 2 (sensing at the
paper's m = 5nr and at m = 80nr); the report must pick the m = 80nr fit of each algorithm,
and its exponent must be the one fitted to iteration counts obtained directly from the
library (``scaled_gd`` / ``gd`` on ``make_problem``), not through the study's records.
"""
import json

import numpy as np
import pytest

from experiments.runtime import report
from experiments.studies import scaledgd_kappa, scaledgd_noise, scaledgd_stepsize
from theory.lowrank import gd, kappa_exponent, make_problem, run_point, scaled_gd

pytestmark = pytest.mark.usefixtures("one_thread")

KAPPAS = (1.0, 5.0, 20.0)
SEEDS = (0, 1)


def _records(cfgs):
    return [{"config": c, "result": run_point(c)} for c in cfgs]


@pytest.fixture(scope="module")
def kappa_summary():
    cfgs = [c for c in scaledgd_kappa.configs(True)
            if (c["part"] == "fit" and c["kappa"] in KAPPAS and c["seed"] in SEEDS)
            or (c["part"] == "panel" and c["problem"] == "sensing" and c["kappa"] == 1.0)]
    return cfgs, scaledgd_kappa.summarise(_records(cfgs), True)


def test_kappa_summary_feeds_the_report(kappa_summary, tmp_path, monkeypatch):
    cfgs, summary = kappa_summary
    (tmp_path / "scaledgd-kappa").mkdir()
    (tmp_path / "scaledgd-kappa" / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setattr(report, "BOUNDS", [b for b in report.BOUNDS
                                           if b["result"].startswith("Tong-Ma-Chi")])
    rep = report.build_report(tmp_path)
    rip = next(c for c in cfgs if c["part"] == "fit" and c["sampling"] == "rip")
    for row in rep["rows"]:
        alg = row["sampler"]
        run = scaled_gd if alg == "scaledgd" else gd
        counts = [[run(make_problem("sensing", n=rip["n"], r=rip["r"], kappa=k,
                                    oversampling=rip["oversampling"], seed=s),
                       eta=0.5, iterations=rip["iterations"], track_distance=False,
                       stop_tol=rip["stop_tol"]).iterations_to(1e-10) for s in SEEDS]
                  for k in KAPPAS]
        direct = kappa_exponent(KAPPAS, counts)
        cell = row["cells"][0]
        assert cell["measured"] == pytest.approx(direct.exponent, abs=1e-12)
        assert cell["ci"] == pytest.approx(list(direct.ci), abs=1e-12)
        assert cell["verdict"] == "consistent", cell
    # the paper-sampling fit is a different curve with its own numbers
    paper = {f["algorithm"]: f["fit"]["exponent"] for f in summary["fits"]
             if f["sampling"] == "paper"}
    assert set(paper) == {"scaledgd", "gd"}
    assert abs(paper["scaledgd"]) < 0.1 and paper["gd"] > 0.6


def test_kappa_summary_panels_and_reading(kappa_summary):
    _, summary = kappa_summary
    sg = next(p for p in summary["panels"] if p["algorithm"] == "scaledgd")
    # factor distance is stored relative to ||X*||_F, from the same run as the rates
    assert sg["factor_distance"][-1] < 1e-12 and sg["rel_error"][-1] < 1e-13
    lo, hi = scaledgd_kappa.rate_span(summary["panels"], "sensing")
    assert lo == hi == sg["rate_factor_distance"] and 0.5 < lo < 1
    text = scaledgd_kappa.reading(summary)
    rip_sg = next(f for f in summary["fits"] if f["sampling"] == "rip"
                  and f["algorithm"] == "scaledgd")["fit"]
    assert f"kappa^{rip_sg['exponent']:+.3f}" in text


def test_noise_summary():
    """The exponent of the final error in the SNR is the least-squares slope of the stored
    final errors on log-log axes, and about -1 for ScaledGD (the floor is linear in the
    noise). Matrix sensing, cut to 150 iterations (ScaledGD is at its floor by 100)."""
    cfgs = [{**c, "iterations": 150} for c in scaledgd_noise.configs(True)
            if c["problem"] == "sensing"]
    recs = _records(cfgs)
    s = scaledgd_noise.summarise(recs, True)
    f = next(f for f in s["fits"] if f["algorithm"] == "scaledgd")
    finals = [r["result"]["final_rel_error"] for r in sorted(
        (r for r in recs if r["config"]["algorithm"] == "scaledgd"),
        key=lambda r: r["config"]["snr"])]
    slope = np.polyfit(np.log(f["snr"]), np.log(finals), 1)[0]
    assert f["fit"]["exponent"] == pytest.approx(slope, abs=1e-10)
    assert abs(f["fit"]["exponent"] + 1) < 0.05
    floors = [x["floor"] for x in s["floors"]]
    assert floors == finals
    assert "SNR^" in scaledgd_noise.reading(s)


def test_stepsize_summary():
    """The best eta and error per kappa are the minimum over the stored non-diverged runs;
    the range up to which every kappa makes progress ends before the first eta where one
    of them does not."""
    cfgs = [c for c in scaledgd_stepsize.configs(True) if c["kappa"] in (1.0, 20.0)]
    recs = _records(cfgs)
    s = scaledgd_stepsize.summarise(recs, True)
    assert {c["kappa"] for c in s["curves"]} == {1.0, 20.0}
    for c in s["curves"]:
        mine = [r for r in recs if r["config"]["algorithm"] == c["algorithm"]
                and r["config"]["kappa"] == c["kappa"]]
        ok = [(r["result"]["final_rel_error"], r["config"]["eta"]) for r in mine
              if r["result"]["stop_reason"] != "diverged"]
        assert (c["best_error"], c["best_eta"]) == min(ok)
    up = s["stable_up_to"]["scaledgd"]
    assert up is not None
    bad = [r["config"]["eta"] for r in recs if r["config"]["algorithm"] == "scaledgd"
           and (r["result"]["stop_reason"] == "diverged"
                or r["result"]["final_rel_error"] > 0.1 * r["result"]["rel_error"][0])]
    assert up < min(bad)
    assert f"{up:.2f}" in scaledgd_stepsize.reading(s)
