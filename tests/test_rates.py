"""theory.rates.fit_geometric_rate: the geometric rate of a decaying sequence with its
interval (used for DPnP's measured decay beside the exact lambda_2)."""
import numpy as np
import pytest

from theory.rates import fit_geometric_rate, verdict


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
