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


def test_custom_rule_with_builtin_coefficients_is_the_builtin():
    """lam2 = 0 and 1 reproduce li-ode and li-sde exactly (same law, same distance)."""
    from theory import sampler_rule
    for lam2, name in ((0.0, "li-ode"), (1.0, "li-sde")):
        mine = exact_distance(make_prior("bimodal", 2), my_sampler(150, lam2), "tv").value
        ref = exact_distance(make_prior("bimodal", 2), sampler_rule(name, li_schedule(150)),
                             "tv").value
        assert mine == ref


def test_readme_carries_the_example():
    import pathlib
    src = pathlib.Path(__file__).read_text()
    block = src.split("# --- README example: bring your own sampler (kept verbatim in README.md) ---\n")[1]
    block = block.split("# --- end of README example ---")[0]
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    assert block.strip() in readme
