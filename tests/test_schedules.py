"""Schedules (THEORY.md section 1) checked against straightforward re-implementations."""
import math

import numpy as np
import pytest

from theory.schedules import (
    Schedule,
    cosine_schedule,
    li_schedule,
    linear_schedule,
    make_schedule,
)


def li_betas_loop(T, c0, c1):
    """beta_1 = T^-c0, beta_{t+1} = (c1 log T / T) min(beta_1 (1 + c1 log T / T)^t, 1)."""
    rate = c1 * math.log(T) / T
    beta1 = T ** (-c0)
    betas = [beta1]
    for t in range(1, T):
        betas.append(rate * min(beta1 * (1 + rate) ** t, 1.0))
    return np.array(betas)


@pytest.mark.parametrize("T,c0,c1", [(10, 2.0, 4.0), (100, 2.0, 4.0), (1000, 2.0, 4.0),
                                     (500, 1.5, 6.0), (2000, 3.0, 8.0)])
def test_li_schedule_matches_loop(T, c0, c1):
    s = li_schedule(T, c0, c1)
    ref = li_betas_loop(T, c0, c1)
    assert s.T == T
    np.testing.assert_allclose(s.beta_steps, ref, rtol=1e-12, atol=0)
    # arrays indexed by the step: index 0 is the data
    assert s.beta[0] == 0 and s.alpha_bar[0] == 1
    np.testing.assert_allclose(s.beta[1:], ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(s.alpha[1:], 1 - ref, rtol=1e-14, atol=0)
    abar_ref = np.cumprod(1 - ref)
    np.testing.assert_allclose(s.alpha_bar[1:], abar_ref, rtol=1e-11, atol=0)


def test_li_alpha_bar_T_order_and_plateau():
    T, c0, c1 = 1000, 2.0, 4.0
    ref = li_betas_loop(T, c0, c1)
    abar_T = math.prod(1 - b for b in ref)            # independent, plain Python product
    s = li_schedule(T, c0, c1)
    assert s.alpha_bar[T] == pytest.approx(abar_T, rel=1e-10, abs=0)
    # THEORY.md: "c0=2, c1=4, T=1000 gives alpha_bar_T ~ 4e-7"
    assert 1e-7 < abar_T < 1e-6
    # the plateau beta = c1 log T / T starts near t = (c0 / c1) T
    rate = c1 * math.log(T) / T
    t_plateau = 1 + int(np.flatnonzero(np.isclose(s.beta_steps, rate, rtol=1e-14))[0])
    assert abs(t_plateau - (c0 / c1) * T) < 0.02 * T
    assert np.all(s.beta_steps <= rate * (1 + 1e-14))


def test_one_minus_alpha_bar_without_cancellation():
    s = li_schedule(1000, 2.0, 4.0)
    # 1 - alpha_bar_1 = beta_1 = 1e-6 exactly; 1 - alpha_bar_2 = 1 - (1-b1)(1-b2)
    b1, b2 = s.beta_steps[:2]
    assert s.one_minus_alpha_bar[0] == 0
    assert s.one_minus_alpha_bar[1] == pytest.approx(1e-6, rel=1e-13, abs=0)
    assert s.one_minus_alpha_bar[2] == pytest.approx(b1 + b2 - b1 * b2, rel=1e-12, abs=0)
    np.testing.assert_allclose(s.one_minus_alpha_bar + s.alpha_bar, 1.0, rtol=0, atol=1e-15)


def test_index_time_round_trip():
    s = li_schedule(250)
    t = np.arange(s.T + 1)
    tau = s.time_of(t)
    np.testing.assert_allclose(tau, t / 250.0, rtol=0, atol=0)
    assert tau[0] == 0 and tau[-1] == 1
    np.testing.assert_array_equal(s.index_of(tau), t)
    # arbitrary times go to the nearest step
    rng = np.random.default_rng(0)
    u = rng.uniform(0, 1, 1000)
    idx = s.index_of(u)
    assert np.all(np.abs(s.time_of(idx) - u) <= 0.5 / s.T + 1e-15)
    with pytest.raises(ValueError):
        s.index_of(1.01)
    with pytest.raises(ValueError):
        s.index_of(-0.01)


def test_alpha_bar_at_exact_on_grid_and_log_linear_between():
    s = li_schedule(300)
    t = np.arange(s.T + 1)
    np.testing.assert_allclose(s.alpha_bar_at(s.time_of(t)), s.alpha_bar, rtol=1e-12, atol=0)
    # halfway between steps: geometric mean of the neighbours (log-linear interpolation)
    mid = s.alpha_bar_at((t[:-1] + 0.5) / s.T)
    np.testing.assert_allclose(mid, np.sqrt(s.alpha_bar[:-1] * s.alpha_bar[1:]), rtol=1e-12)
    # continuous in time and non-increasing
    fine = s.alpha_bar_at(np.linspace(0, 1, 5001))
    assert np.all(np.diff(fine) <= 0)
    assert s.alpha_bar_at(0.0) == 1.0
    with pytest.raises(ValueError):
        s.alpha_bar_at(1.5)


@pytest.mark.parametrize("T", [1, 0, -3, 2.5, True, "abc"])
def test_bad_T_raises(T):
    with pytest.raises(ValueError):
        li_schedule(T)
    with pytest.raises(ValueError):
        linear_schedule(T)
    with pytest.raises(ValueError):
        cosine_schedule(T)


@pytest.mark.parametrize("c0,c1", [(0.0, 4.0), (-1.0, 4.0), (float("nan"), 4.0),
                                   (float("inf"), 4.0), (2.0, 0.0), (2.0, -4.0),
                                   (2.0, float("nan")), (2.0, 100.0)])
def test_bad_li_constants_raise(c0, c1):
    # (2, 100) at T = 100: c1 log T / T = 4.6 >= 1, not a valid step size
    with pytest.raises(ValueError):
        li_schedule(100, c0, c1)


@pytest.mark.parametrize("beta", [[0.1], [0.1, 0.0], [0.1, 1.0], [0.1, -0.2],
                                  [0.1, float("nan")], [[0.1, 0.2]]])
def test_bad_custom_schedule_raises(beta):
    with pytest.raises(ValueError):
        Schedule(np.array(beta))


@pytest.mark.parametrize("T", [100, 1000, 2000])
def test_linear_schedule_endpoints(T):
    s = linear_schedule(T)
    scale = 1000.0 / T
    assert s.beta_steps[0] == pytest.approx(1e-4 * scale, rel=1e-14, abs=0)
    assert s.beta_steps[-1] == pytest.approx(0.02 * scale, rel=1e-14, abs=0)
    # linear in t: constant increments
    np.testing.assert_allclose(np.diff(s.beta_steps), (0.02 - 1e-4) * scale / (T - 1), rtol=1e-9)
    # total noise sum_t beta_t of the 1000-step schedule is kept
    assert s.beta_steps.sum() == pytest.approx(1000 * (1e-4 + 0.02) / 2, rel=1e-12, abs=0)


def test_linear_schedule_capped():
    s = linear_schedule(10)
    assert s.beta_steps[-1] == 0.999
    assert s.beta_steps[0] == pytest.approx(1e-2, rel=1e-14, abs=0)


@pytest.mark.parametrize("T,s_off", [(50, 0.008), (1000, 0.008), (200, 0.02)])
def test_cosine_closed_form(T, s_off):
    sch = cosine_schedule(T, s_off)

    def f(tau):
        return math.cos((tau + s_off) / (1 + s_off) * math.pi / 2) ** 2

    ref = np.array([f(t / T) / f(0.0) for t in range(T + 1)])
    # the closed form holds for t < T; the last step is capped at beta = 0.999
    np.testing.assert_allclose(sch.alpha_bar[:T], ref[:T], rtol=1e-10, atol=0)
    assert sch.beta_steps[-1] == 0.999
    assert sch.alpha_bar[T] == pytest.approx(ref[T - 1] * 1e-3, rel=1e-10, abs=0)


def test_make_schedule_by_name():
    np.testing.assert_array_equal(make_schedule("li", 100, c0=2.5, c1=5.0).beta_steps,
                                  li_schedule(100, 2.5, 5.0).beta_steps)
    np.testing.assert_array_equal(make_schedule("linear", 100).beta_steps,
                                  linear_schedule(100).beta_steps)
    np.testing.assert_array_equal(make_schedule("cosine", 100).beta_steps,
                                  cosine_schedule(100).beta_steps)
    assert li_schedule(100, 2.5, 5.0).describe() == {"name": "li", "T": 100, "c0": 2.5,
                                                     "c1": 5.0}
    with pytest.raises(ValueError):
        make_schedule("sigmoid", 100)
