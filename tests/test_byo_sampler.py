# --- README example: bring your own sampler (kept verbatim in README.md) ---
import numpy as np
from theory import AffineRule, exact_distance, li_schedule, make_prior
from theory.rates import fit_exponent


def my_sampler(T, lam2=0.5):
    """Y_{t-1} = (Y_t + (1 + lam2)/2 beta_t s_t(Y_t) + sqrt(lam2 beta_t) Z_t) / sqrt(alpha_t):
    between li-ode (lam2 = 0) and li-sde (lam2 = 1). Arrays are indexed by t = 0..T."""
    s = li_schedule(T)
    a = 1 / np.sqrt(s.alpha)
    b = (1 + lam2) / 2 * s.beta / np.sqrt(s.alpha)
    c = np.sqrt(lam2 * s.beta / s.alpha)
    return AffineRule("my-sampler", a, b, c, s)


def test_my_sampler_converges_like_1_over_T():
    Ts = [100, 200, 400, 800]
    tv = [exact_distance(make_prior("bimodal", 1), my_sampler(T), "tv").value for T in Ts]
    fit = fit_exponent(Ts, np.array(tv) / np.log(Ts))
    assert -1.15 < fit.exponent < -0.85, fit
# --- end of README example ---

import pytest  # noqa: E402


def test_custom_rule_with_builtin_coefficients_is_the_builtin():
    """lam2 = 0 and 1 reproduce li-ode and li-sde exactly (same law, same distance)."""
    from theory import sampler_rule
    for lam2, name in ((0.0, "li-ode"), (1.0, "li-sde")):
        mine = exact_distance(make_prior("bimodal", 2), my_sampler(150, lam2), "tv").value
        ref = exact_distance(make_prior("bimodal", 2), sampler_rule(name, li_schedule(150)),
                             "tv").value
        assert mine == ref


@pytest.mark.parametrize("which", ["sampler", "step function"])
def test_readme_carries_the_example(which):
    import pathlib
    src = pathlib.Path(__file__).read_text()
    marker = f"# --- README example: bring your own {which} (kept verbatim in README.md) ---\n"
    block = src.split(marker)[1].split("# --- end of README example ---")[0]
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    assert block.strip() in readme


# --- README example: bring your own step function (kept verbatim in README.md) ---
import math

import torch
from theory import StepSampler, exact_distance, linear_schedule, make_prior, sampler_rule
from theory.distances.samples import sweep_T
from theory.rates import fit_exponent


def my_ddpm(T):
    """Ho's ancestral step written from x0_hat and eps_hat (THEORY.md section 2), as a step
    function: any update, any number of score calls, noise from the generator."""
    s = linear_schedule(T)
    ab, om = s.alpha_bar, s.one_minus_alpha_bar

    def step(y, t, score, generator):
        eps_hat = -math.sqrt(om[t]) * score(y, t)
        x0_hat = (y - math.sqrt(om[t]) * eps_hat) / math.sqrt(ab[t])
        sigma = math.sqrt(om[t - 1] / om[t] * s.beta[t])
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        return (math.sqrt(ab[t - 1]) * x0_hat
                + math.sqrt(om[t - 1] - sigma ** 2) * eps_hat + sigma * z)

    return StepSampler("my-ddpm", step, s)


def test_my_step_sampler_converges():
    prior, Ts = make_prior("gauss", 1), [20, 40, 80]
    est = sweep_T(prior, Ts, 20000, rule_factory=my_ddpm, metric="w2", n_boot=50)
    fit = fit_exponent(Ts, [e.value for e in est])      # sample-based W2, common random numbers
    assert -1.2 < fit.exponent < -0.6, fit
    # the same update as the built-in ddpm rule: its exact W2 lies in our interval
    exact = exact_distance(prior, sampler_rule("ddpm", linear_schedule(40)), "w2").value
    assert est[1].lower <= exact <= est[1].upper, (est[1], exact)
# --- end of README example ---


def test_step_sampler_reproduces_the_affine_rule_draw_for_draw():
    """A step function doing the li-sde update, drawing its noise like run_sampler does,
    gives the affine rule's samples bit for bit (same seed, same numbers)."""
    from theory import AnalyticScore, run_sampler
    rule = sampler_rule("li-sde", li_schedule(60))
    a, b, c = rule.a, rule.b, rule.c

    def step(y, t, score, generator):
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        return a[t] * y + b[t] * score(y, t) + c[t] * z

    mine = StepSampler("li-sde-by-step", step, rule.schedule)
    prior = make_prior("bimodal", 2)
    score = AnalyticScore(prior, rule.schedule)
    ref = run_sampler(rule, score, 500, 2, generator=torch.Generator().manual_seed(4))
    out = run_sampler(mine, score, 500, 2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(ref, out)


def test_my_ddpm_is_ho_ancestral_sampler():
    """The x0_hat / eps_hat form with sigma_t^2 = Ho's posterior variance is Ho's update
    (Song et al. 2021, eta = 1): same samples as the built-in ddpm rule to rounding."""
    from theory import AnalyticScore, run_sampler
    prior, T = make_prior("bimodal", 1), 50
    rule = sampler_rule("ddpm", linear_schedule(T))
    score = AnalyticScore(prior, rule.schedule)
    ref = run_sampler(rule, score, 2000, 1, generator=torch.Generator().manual_seed(1))
    out = run_sampler(my_ddpm(T), score, 2000, 1, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ref, out, rtol=0, atol=1e-9)


def test_step_sampler_bad_input():
    s = li_schedule(20)
    with pytest.raises(ValueError, match="callable"):
        StepSampler("x", 3, s)
    with pytest.raises(ValueError, match="shape"):
        from theory import AnalyticScore, run_sampler
        bad = StepSampler("bad", lambda y, t, score, g: y[:, :0], s)
        run_sampler(bad, AnalyticScore(make_prior("gauss", 2), s), 10, 2)
