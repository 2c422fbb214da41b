"""theory.rates.fit_geometric_rate: the geometric rate of a decaying sequence with its
interval (used for DPnP's measured decay beside the exact lambda_2)."""
import numpy as np
import pytest

from theory.rates import (fit_exponent, fit_geometric_rate, geometric_rate_drift,
                          geometric_rate_verdict, verdict)


def test_exact_geometric_sequence():
    k = np.arange(1, 26)
    r = fit_geometric_rate(k, 3.0 * 0.8 ** k, k_min=13)
    assert r["rate"] == pytest.approx(0.8, rel=1e-12)
    assert r["ci"][0] <= 0.8 <= r["ci"][1] and r["ci"][1] - r["ci"][0] < 1e-10
    assert r["k_range"] == [13, 25] and r["n_points"] == 13


def test_error_bars_widen_the_interval():
    """A curve 1 +- 5% (deterministic wiggle) times 0.6^k: the interval contains 0.6 and
    widens when the points carry error bars of that size."""
    k = np.arange(1, 21)
    y = 0.6 ** k * (1 + 0.05 * np.sin(3 * k))
    bare = fit_geometric_rate(k, y)
    bars = fit_geometric_rate(k, y, 0.95 * y, 1.05 * y)
    assert bare["ci"][0] <= 0.6 <= bare["ci"][1]
    assert bars["ci"][0] < bare["ci"][0] and bars["ci"][1] > bare["ci"][1]
    assert "error" in fit_geometric_rate(k[:2], y[:2])


def test_verdict_directions():
    assert verdict(-1.0, (-1.02, -0.98), var="T") == "consistent"
    assert verdict(-0.5, (-1.0, -0.98), var="T").startswith("bound loose by a factor T^0.43")
    assert verdict(2.0, (1.95, 2.05), larger_is_better=True, var="eta") == "consistent"
    assert verdict(1.0, (0.5, 0.6), larger_is_better=True, var="eps").startswith("violated")
    # a vanishing variable: TV ~ eps^1.15 under a bound eps^1 is loose by (1/eps)^0.10,
    # which grows as eps -> 0 ("eps^0.10" would shrink)
    assert verdict(1.0, (1.15, 1.20), larger_is_better=True, var="eps") == \
        "bound loose by a factor (1/eps)^0.10 or more"
    assert verdict(1.0, (0.5, 0.6), larger_is_better=True, var="eps") == \
        "violated: worse by (1/eps)^0.35 or more"


def _plateau_then_power_law(x, x_corner=200.0, p=-2.0):
    """Flat up to ``x_corner``, then exactly ``x^p``: a pre-asymptotic plateau."""
    x = np.asarray(x, float)
    return np.where(x < x_corner, 1e-4, 1e-4 * (x / x_corner) ** p)


def test_settled_range_start_leaves_out_a_plateau():
    """The fit starts at the first point past the plateau; a fit from the first point >= 100
    (the old rule) takes in the plateau's end and reads the slope -2 as shallower (-1.87)."""
    from theory.rates import settled_range_start
    x = np.geomspace(10, 1e4, 12)
    y = _plateau_then_power_law(x)
    start = settled_range_start(x, y, x_min=100)
    assert start == pytest.approx(x[x >= 200][0])         # 231, the plateau (to 123) left out
    old = fit_exponent(x, y, x_min=100)                       # from T = 100 as before
    assert old.exponent > -1.95 and old.r2 < 0.995          # biased and curved
    new = fit_exponent(x, y, x_min=start)
    assert new.exponent == pytest.approx(-2.0, abs=1e-9)
    assert verdict(-2.0, new.ci, var="T") == "consistent"


def test_settled_range_start_none_when_the_slope_keeps_drifting():
    """y = x^(-log x / 2): the local slope -log(x) drifts by ~0.6 a point everywhere: not
    resolved (None), also with a generous minimum of points."""
    from theory.rates import settled_range_start
    x = np.geomspace(10, 1e4, 12)
    assert settled_range_start(x, x ** (-0.5 * np.log(x))) is None
    # a settled power law over the whole range starts at its first point
    assert settled_range_start(x, 3 * x ** -1.5) == pytest.approx(10.0)


def test_rate_vs_T_summary_fits_past_a_plateau_and_says_not_resolved():
    """rate-vs-T's summarise on planted curves: an order-2 solver's TV with a plateau up to
    T = 200, then exactly log(T)^2 T^-2, is fitted from past the plateau (exponent -2,
    consistent); a curve whose slope never settles gets no fit and 'not resolved'."""
    from experiments.studies import rate_vs_T as rt
    Ts = [10, 19, 35, 66, 123, 231, 433, 811, 1520, 2848]
    good = _plateau_then_power_law(Ts) * np.log(np.asarray(Ts, float)) ** 2
    bad = np.asarray(Ts, float) ** (-0.5 * np.log(np.asarray(Ts, float)))

    def rec(prior, T, v):
        return {"config": {"prior": prior, "d": 1, "sampler": "dpm++2m", "T": T},
                "result": {"value": float(v), "lower": float(v) * (1 - 1e-9),
                           "upper": float(v) * (1 + 1e-9)}}
    s = rt.summarise([rec("gauss", T, v) for T, v in zip(Ts, good)]
                     + [rec("bimodal", T, v) for T, v in zip(Ts, bad)], fast=True)
    by = {f["prior"]: f for f in s["fits"]}
    lf = by["gauss"]["log_corrected_fits"]["tv_over_logT^2"]
    assert lf["x_range"][0] == 231.0 and lf["exponent"] == pytest.approx(-2.0, abs=1e-6)
    assert verdict(-2.0, lf["ci"], var="T") == "consistent"
    assert "not resolved" in by["bimodal"]["fit"]["error"]
    assert "not resolved" in by["bimodal"]["log_corrected_fits"]["tv_over_logT^2"]["error"]


def test_violation_needs_a_settled_range():
    """A fit slower than the bound is "violated" only when its local slopes have settled; a
    pre-asymptotic series still steepening toward the bound is "not resolved"."""
    ci = (-3.90, -3.86)  # slower than T^-4 by more than the 0.05 tolerance
    steepening = [-3.81, -3.85, -3.88]
    assert verdict(-4, ci, var="T", local=steepening).startswith("not resolved (pre-asymptotic")
    settled = [-3.88, -3.87, -3.88]
    assert verdict(-4, ci, var="T", local=settled).startswith("violated")
    assert verdict(-4, ci, var="T").startswith("violated")
    # steepening past the bound or consistent intervals are untouched
    assert verdict(-4, (-4.1, -3.9), var="T", local=steepening) == "consistent"


def test_geometric_rate_drift_measures_a_second_eigenvalue():
    """TV_k = lam2^k (1 + c (lam3 / lam2)^k): the fit over k = 13..25 misses lam2 by more than
    its (tiny, noise-free) interval, but by less than the drift between the rates fitted over
    the range's two halves; with c = 0 the fit recovers lam2 to rounding and the drift is ~0.
    A wrong exact rate (lam2 + 1e-3) differs however the drift is counted."""
    lam2, lam3 = 0.8, 0.5
    k = np.arange(1, 26)
    tv = lam2 ** k * (1 + 3.0 * (lam3 / lam2) ** k)
    fit = fit_geometric_rate(k, tv, k_min=13)
    drift = geometric_rate_drift(k, tv, k_range=fit["k_range"])
    miss = lam2 - fit["rate"]
    # the correction log(1 + c r^k) falls with k: the fitted decay is faster than lam2^k, by
    # a bias of order c r^13 ~ 7e-3 at most: below the drift, outside the interval
    assert 0 < miss < drift < 0.05 and fit["ci"][1] < lam2
    assert geometric_rate_verdict(fit["ci"], lam2, drift=drift) == \
        "consistent within the fit's drift"
    assert geometric_rate_verdict(fit["ci"], lam2).startswith("differs")
    assert geometric_rate_verdict(fit["ci"], lam2, drift=0.0).startswith("differs")
    assert geometric_rate_verdict(fit["ci"], lam2 - 0.1, drift=drift).startswith("differs")
    pure = lam2 ** k
    f0 = fit_geometric_rate(k, pure, k_min=13)
    assert abs(f0["rate"] - lam2) < 1e-12
    assert geometric_rate_drift(k, pure, k_range=f0["k_range"]) < 1e-12
    # an exact rate whose own error bar reaches the interval counts as inside it
    assert geometric_rate_verdict([0.50, 0.51], 0.515, exact_error=0.006) == "consistent"
    assert geometric_rate_verdict([0.50, 0.51], 0.515, exact_error=0.004, drift=0.002) == \
        "consistent within the fit's drift"
    assert "5.8e-03 relative" in geometric_rate_verdict([0.50, 0.51], 0.515, exact_error=0.002)
    assert geometric_rate_drift(k[:4], pure[:4], k_range=(1, 4)) is None


def test_a_flat_stretch_of_dpmpp2m_on_the_gaussian_is_a_sign_change_of_its_variance_error():
    """gauss d = 1, dpm++2m from q_T: the variance error of the closed-form output law is
    negative at T = 35 and positive at T = 66, so TV (a function of it alone on a centred
    Gaussian) dips near zero in between: at T = 49 it is 300 times smaller than at 35 or 66,
    and the grid 35, 66, 123 shows a flat stretch 66-123 that the note explains."""
    from experiments.points.measure import measure
    from experiments.studies import rate_vs_T as m
    T = [19, 35, 66, 123, 231]
    var, mean = m.gaussian_variance_errors("gauss", 1, "dpm++2m", T)
    assert mean == 0.0 and var[1] < 0 < var[2]
    tv = {t: measure({"prior": "gauss", "d": 1, "sampler": "dpm++2m", "schedule": "li",
                      "T": t, "metric": "tv", "init": "qT"})["value"] for t in (35, 49, 66, 123)}
    assert tv[49] < 1e-2 * min(tv[35], tv[66])
    vals = [3.8e-3, tv[35], tv[66], tv[123], 5.7e-5]
    assert m.flat_stretches(T, vals) == [(66.0, 123.0)]
    note = m.flat_stretch_note({"T": T, "tv": vals, "variance_error": var, "mean_error": mean})
    assert "T = 66–123" in note and "between T = 35 and 66" in note
    # a flat stretch without a sign change gets no such note
    assert m.flat_stretch_note({"T": T, "tv": vals, "variance_error": [abs(v) for v in var],
                                "mean_error": 0.0}) is None
