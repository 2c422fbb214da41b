"""The low-rank studies (scaledgd-kappa, -noise, -stepsize): their summaries carry the
numbers the tightness report and the readings use, on a tiny configuration.

The kappa grid is cut to kappa in {1, 5, 20} and two seeds, at n = 20, r = 2 (sensing at the
paper's m = 5nr and at m = 80nr); the report must pick the m = 80nr fit of each algorithm,
and its exponent must be the one fitted to iteration counts obtained directly from the
library (``scaled_gd`` / ``gd`` on ``make_problem``), not through the study's records.
"""
import json
import math

import numpy as np
import pytest

from experiments.runtime import report
from experiments.studies import scaledgd_kappa, scaledgd_noise, scaledgd_stepsize
from theory.figures import format_exponent
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
    assert f"kappa^{format_exponent(rip_sg['exponent'], rip_sg['ci'])}" in text
    assert "^-0.0 " not in text and "kappa^-0.00 " not in text      # no signed zero


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
    # iterations to within 10% of the floor: the first t at which the stored curve is at or
    # below 1.1 x ScaledGD's final error, for each algorithm (None: never within the run)
    rows = scaledgd_noise.near_floor_iterations(s, "sensing")
    assert [r[0] for r in rows] == sorted(f["snr"])
    for snr, it_sg, it_gd, horizon in rows:
        pair = {r["config"]["algorithm"]: r["result"] for r in recs
                if r["config"]["snr"] == snr}
        level = 1.1 * pair["scaledgd"]["final_rel_error"]
        first = [next((t for t, v in enumerate(pair[a]["rel_error"]) if v <= level), None)
                 for a in ("scaledgd", "gd")]
        assert (it_sg, it_gd) == tuple(first) and horizon == 150
        assert 0 < it_sg < 150
    assert scaledgd_noise.floors_consistent(s)
    caption = scaledgd_noise.noise_caption(s, ["sensing"])
    assert ", ".join(str(r[1]) for r in rows) in caption and "150 iterations" in caption
    assert f"SNR^{scaledgd_noise.format_exponent(f['fit']['exponent'], f['fit']['ci'])}" \
        in scaledgd_noise.reading(s)
    # the 1/SNR marks: c / snr with log c the mean of log(floor * snr), so their geometric
    # mean is the floors' and each lies within the fit's scatter of its floor
    ref = scaledgd_noise.floor_reference(s, "sensing")
    assert [r[0] for r in ref] == sorted(f["snr"])
    c = np.exp(np.mean(np.log(np.array(finals) * np.array(sorted(f["snr"])))))
    assert [r[1] for r in ref] == pytest.approx([c / x for x in sorted(f["snr"])], rel=1e-12)
    assert np.allclose(np.log([r[1] for r in ref]), np.log(finals), atol=0.05)
    # a planted floor exponent of -1/2 leaves the ends off their marks by a factor sqrt(10)
    planted = {"floors": [{"problem": "x", "snr": q, "floor": q ** -0.5} for q in (1e2, 1e4)]}
    (_, a), (_, b) = scaledgd_noise.floor_reference(planted, "x")
    assert a / 1e-1 == pytest.approx(10 ** 0.5) and 1e-2 / b == pytest.approx(10 ** 0.5)


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
    text = scaledgd_stepsize.reading(s)
    assert f"{up:.2f}" in text
    # the first diverging eta of each ScaledGD curve, and the error ratio over kappa at
    # each eta up to the range's end, read from the records
    for c in (c for c in s["curves"] if c["algorithm"] == "scaledgd"):
        div = sorted(r["config"]["eta"] for r in recs if r["config"]["algorithm"] == "scaledgd"
                     and r["config"]["kappa"] == c["kappa"]
                     and r["result"]["stop_reason"] == "diverged")
        assert scaledgd_stepsize.first_divergence(c) == (div[0] if div else None)
    ratios = scaledgd_stepsize.kappa_error_ratios(s)
    assert [e for e, _ in ratios] == [e for e in s["curves"][0]["eta"] if e <= up + 1e-9]
    for e, r in ratios:
        v = [r_["result"]["final_rel_error"] for r_ in recs
             if r_["config"]["algorithm"] == "scaledgd" and r_["config"]["eta"] == e]
        assert r == pytest.approx(max(v) / min(v), rel=1e-12)
    assert f"at most {max(r for _, r in ratios):.1f}" in text
    assert f"{max(r for _, r in ratios):.1f}-fold" in scaledgd_stepsize.stepsize_title(s)


def _panel(problem, kappa, rate, half):
    return {"problem": problem, "algorithm": "scaledgd", "kappa": kappa,
            "rate_factor_distance": rate, "rate_factor_distance_ci": [rate - half, rate + half],
            "theorem_rate": 0.7}


def test_kappa_rate_departures_and_spread():
    """A kappa departs when its interval is farther from the others' hull than the hull is
    wide (robust PCA at kappa = 20 in the fixture: 0.838 against 0.794-0.798, intervals
    +-0.002); a steady small trend (sensing: 0.921 to 0.917, intervals +-0.0005) is a
    significant spread, not a departure."""
    panels = ([_panel("rpca", k, r, 0.002) for k, r in
               ((1, 0.794), (5, 0.798), (10, 0.794), (20, 0.838))]
              + [_panel("sensing", k, r, 0.0005) for k, r in
                 ((1, 0.921), (5, 0.919), (10, 0.917), (20, 0.9166))])
    d = scaledgd_kappa.rate_departures(panels, "rpca")
    assert [(x["kappa"], x["direction"]) for x in d] == [(20, "slower")]
    assert d[0]["others"] == (0.794, 0.798) and d[0]["others_kappas"] == [1, 5, 10]
    assert scaledgd_kappa.rate_departures(panels, "sensing") == []
    sp = scaledgd_kappa.rate_spread(panels, "sensing")
    assert sp["spread"] == pytest.approx(0.0044) and sp["significant"] and sp["slowest"] == 1
    assert not scaledgd_kappa.rate_spread([_panel("sensing", k, 0.9 + 1e-4 * k, 0.01)
                                           for k in (1, 5)], "sensing")["significant"]
    summary = {"panels": panels, "fast": True,
               "fits": [{"sampling": "rip", "algorithm": "gd", "eta": 0.5,
                         "fit": {"exponent": 1.038, "ci": [0.97, 1.1]}}]}
    title = scaledgd_kappa.kappa_title(summary)
    assert "varies by ≤ 0.004 on matrix sensing" in title
    assert "slower at κ = 20 (0.838 vs 0.794–0.798) on robust PCA" in title
    assert "κ¹·⁰⁴" in title
    cap = scaledgd_kappa.rate_caption(panels)
    assert "κ = 20 departs" in cap and "slowest at κ = 1" in cap


def test_kappa_fixture_title_names_the_robust_pca_departure():
    import json
    from pathlib import Path
    s = json.loads((Path(__file__).parent / "data" / "summaries" /
                    "scaledgd-kappa.json").read_text())
    assert [d["kappa"] for d in scaledgd_kappa.rate_departures(s["panels"], "rpca")] == [20.0]
    for p in ("sensing", "completion"):
        assert scaledgd_kappa.rate_departures(s["panels"], p) == []
    title = scaledgd_kappa.kappa_title(s)
    assert "slower at κ = 20 (0.838 vs 0.794–0.798) on robust PCA" in title
    assert "rate free of κ" not in title
    assert "kappa = 20 on rpca (0.838" in scaledgd_kappa.reading(s)


@pytest.mark.parametrize("x, text", [(1e-10, "10⁻¹⁰"), (2e-5, "2×10⁻⁵"), (0.0005, "5×10⁻⁴"),
                                     (0.002, "0.002"), (0.0044, "0.004"), (3e5, "3×10⁵"),
                                     (100.0, "100")])
def test_sci_writes_no_e_notation(x, text):
    assert scaledgd_kappa.sci(x) == text


def test_sci_writes_decades_as_powers_when_asked():
    sci = scaledgd_kappa.sci
    assert [sci(x, powers=True) for x in (1e2, 1e3, 1e4, 1.0, 0.01)] == \
        ["10²", "10³", "10⁴", "10⁰", "10⁻²"]
    assert sci(200.0, powers=True) == "200" and sci(3e5, powers=True) == "3×10⁵"


def test_exponent_text_uses_the_unicode_minus():
    assert scaledgd_kappa.exponent_text(-0.0314, (-0.1033, 0.0405)) == "−0.03 [−0.10, +0.04]"


def test_best_step_stars_at_one_point_are_nested_not_moved():
    """Stars at the same eta within STAR_OVERLAP_DECADES of one another are nested (the
    first curve's the largest, each later one STAR_NEST_STEP smaller); a star alone, or one
    far above, keeps the plain size; a curve without a best step has no star."""
    s, d = scaledgd_stepsize.STAR_SIZE, scaledgd_stepsize.STAR_NEST_STEP
    curves = [{"best_eta": 0.7, "best_error": 2e-7}, {"best_eta": 0.7, "best_error": 1e-7},
              {"best_eta": 0.7, "best_error": 3e-7}, {"best_eta": 0.7, "best_error": 1e-2},
              {"best_eta": 0.6, "best_error": 2e-7}, {"best_eta": 0.9, "best_error": None}]
    sizes = scaledgd_stepsize.best_star_sizes(curves)
    assert sizes[:3] == pytest.approx([s + 2 * d, s + d, s])
    assert sizes[3:] == [s, s, None]


def test_kappa_title_names_only_departures_that_change_the_iterations():
    """Like full mode's matrix sensing: kappa = 1 at 0.9262 against 0.9240-0.9245 with
    intervals +-9e-5 is a resolved departure, but it changes the iterations to a given error
    by log(0.9245) / log(0.9262) = 1.02x, under MATERIAL_ITERATIONS: the title gives the spread
    and the iterations' range (7%: 0.859 to 0.868 on robust PCA), and the caption keeps the
    departure. Robust PCA's 0.838 against 0.798 (1.29x) stays in the title."""
    sensing = [_panel("sensing", k, r, 9e-5) for k, r in
               ((1, 0.9262), (5, 0.9245), (10, 0.9241), (20, 0.9240))]
    rpca = [_panel("rpca", k, r, 0.001) for k, r in
            ((1, 0.859), (5, 0.862), (10, 0.865), (20, 0.868))]
    assert [d["kappa"] for d in scaledgd_kappa.rate_departures(sensing, "sensing")] == [1]
    assert scaledgd_kappa.material_departures(sensing, "sensing") == []
    assert scaledgd_kappa.iterations_ratio(0.9262, 0.9245) == pytest.approx(
        math.log(0.9245) / math.log(0.9262))
    summary = {"panels": sensing + rpca, "fits": [{"sampling": "rip", "algorithm": "gd",
                                                    "eta": 0.5, "fit": {"exponent": 1.03}}]}
    title = scaledgd_kappa.kappa_title(summary)
    assert "varies by ≤ 0.009 on matrix sensing and robust PCA" in title
    assert "(iteration counts to a given error agree within 7%)" in title   # log(.859) / log(.868) = 1.074
    assert "slower" not in title
    assert "κ = 1 departs" in scaledgd_kappa.rate_caption(summary["panels"])
    panels = ([_panel("rpca", k, r, 0.002) for k, r in
               ((1, 0.794), (5, 0.798), (10, 0.794), (20, 0.838))])
    assert [d["kappa"] for d in scaledgd_kappa.material_departures(panels, "rpca")] == [20]


def test_stepsize_reading_says_when_no_step_size_serves_every_kappa():
    """Full mode: GD at kappa = 20 reaches 2.3e-2 at best in 80 iterations and at no step size
    do all four kappas cut their error tenfold; the reading says so in words (it read
    "up to eta = none"). ScaledGD's range ends at 0.86 (first divergence 0.88, kappa = 20)."""
    import json
    from pathlib import Path
    s = json.loads((Path(__file__).parent / "data" / "summaries_full" /
                    "scaledgd-stepsize.json").read_text())
    assert s["stable_up_to"]["gd"] is None
    text = scaledgd_stepsize.reading(s)
    assert "GD: best error over eta" in text and "eta = none" not in text
    assert "at no step size does every kappa end at a tenth of its initial error or less" in text
    assert s["stable_up_to"]["scaledgd"] == pytest.approx(0.86, abs=0.005)
    assert "every kappa ends at a tenth of its initial error or less up to eta = 0.86" in text
    assert "for eta <= 0.86 ScaledGD's largest / smallest error over kappa is at most 2.0" in text


def test_rate_span_text_shows_where_the_ends_differ():
    """The reading's rate spans: "completion 0.898-0.898" hid a real spread; NaN (no run)
    reads "not measured" instead of "nan-nan"."""
    from experiments.studies.scaledgd_kappa import _span_text
    assert _span_text(0.917, 0.921) == "0.917-0.921"
    assert _span_text(0.89712, 0.89738) == "0.8971-0.8974"
    assert _span_text(0.5, 0.5) == "0.500"
    assert _span_text(float("nan"), float("nan")) == "not measured"
