"""diffusers schedulers read as exact rules (theory.diffusers_adapter.read_scheduler).

* DDIM (eta 0 and 1) and DDPM on the linear schedule, 50 steps: the read coefficients are the
  built-in rules' on the scheduler's own alpha_bar sequence (1e-12), so TV, KL and W2 and their
  intervals are equal (1e-10); the scheduler's own loop and run_sampler agree draw for draw;
  a Monte Carlo run of the loop has the exact law's moments;
* clip_sample=True is refused, naming the call;
* classes the adapter was not written for: LMSDiscreteScheduler (a four-step linear multistep
  method in VE coordinates: a rule with history; exact Gaussian law against the loop's Monte
  Carlo moments and draw for draw), EulerDiscreteScheduler (VE coordinates; it is DDIM, and its
  law is the built-in ddim's) and DPMSolverMultistepScheduler (2M and 3M against the built-in
  dpm++2m and dpm++3m-ref); these two compute in float32 (they cast the sample), so they are
  read with tol = 1e-6 and agree to float32 round-off.

diffusers is an optional dependency (the ``diffusers`` and ``test`` extras). Cost: about 30 s
plus the import of diffusers.
"""
import copy
import inspect
import math

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from theory import exact_distance, make_prior, sampler_rule  # noqa: E402
from theory.diffusers_adapter import float64_scheduler, read_scheduler  # noqa: E402
from theory.laws.gaussian import gaussian_output  # noqa: E402
from theory.priors import ProductPrior  # noqa: E402
from theory.probe import NotAffine  # noqa: E402
from theory.samplers import AffineRule, AnalyticScore, run_sampler  # noqa: E402
from theory.stages import StageRule  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _ddim(**kw):
    s = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                clip_sample=False, **kw)
    s.set_timesteps(50)
    return s


def _ddpm(**kw):
    s = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", **kw)
    s.set_timesteps(50)
    return s


def _loop(scheduler, prior, n, seed, step_kwargs=None):
    """The loop a user writes, with the exact epsilon-model of ``prior`` (float64 arrays)."""
    sch = float64_scheduler(scheduler)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, prior.dim, generator=g, dtype=torch.float64) * float(sch.init_noise_sigma)
    one, zero = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    kw = dict(step_kwargs or {})
    if "generator" in inspect.signature(sch.step).parameters:
        kw["generator"] = g
    for j, tau in enumerate(sch.timesteps):
        s = float(copy.deepcopy(sch).add_noise(one, zero, sch.timesteps[j:j + 1]))
        sg = float(copy.deepcopy(sch).add_noise(zero, one, sch.timesteps[j:j + 1]))
        ab = s * s / (s * s + sg * sg)
        xin = sch.scale_model_input(x, tau)
        eps = -math.sqrt(1 - ab) * prior.marginal(ab).score(xin)
        x = sch.step(eps, tau, x, **kw).prev_sample.double()
    return x


def _draw_for_draw(sch, rule, n, seed):
    """The loop and run_sampler from the same generator on the bimodal prior: max |difference|."""
    prior = make_prior("bimodal", 1)
    x = _loop(sch, prior, n, seed=seed)
    y = run_sampler(rule, AnalyticScore(prior, rule.schedule), n, 1,
                    generator=torch.Generator().manual_seed(seed))
    return float((x - y).abs().max())


def _moments_match_the_exact_law(sch, rule, seed):
    """The loop's mean and variance on N(0.5, 2) (n = 20000) within 4 standard errors of the
    exact law of the read rule."""
    g = ProductPrior([[1.0]], [[0.5]], [[math.sqrt(2.0)]])
    m, v = gaussian_output(np.array([0.5]), np.array([2.0]), rule)
    x = _loop(sch, g, 20000, seed=seed)[:, 0].numpy()
    assert abs(x.mean() - m[0]) < 4 * math.sqrt(v[0] / x.size)
    assert abs(x.var() - v[0]) < 4 * v[0] * math.sqrt(2 / x.size)


CASES = [("ddim", _ddim, {}, "ddim", {}), ("ddim-eta1", _ddim, {"eta": 1.0}, "ddim", {"eta": 1.0}),
         ("ddpm", _ddpm, {}, "ddpm", {})]


@pytest.mark.parametrize("label,make,step_kwargs,builtin,bkw", CASES)
def test_read_rule_is_the_builtin_rule(label, make, step_kwargs, builtin, bkw):
    rule = read_scheduler(make(**({} if make is _ddim else {"clip_sample": False})),
                          step_kwargs=step_kwargs)
    assert isinstance(rule, AffineRule) and rule.target == "data" and rule.T == 50
    ours = sampler_rule(builtin, rule.schedule, target="data", **bkw)
    for key in ("a", "b", "c"):
        np.testing.assert_allclose(getattr(rule, key)[1:], getattr(ours, key)[1:], rtol=1e-12,
                                   atol=1e-14)
    for prior in (make_prior("bimodal", 1), make_prior("gauss", 2)):
        for metric in ("tv", "kl", "w2"):
            a, b = exact_distance(prior, rule, metric), exact_distance(prior, ours, metric)
            for k in ("value", "lower", "upper"):
                assert abs(getattr(a, k) - getattr(b, k)) <= 1e-10, (label, metric, k, a, b)
    if label == "ddim-eta1":                 # DDIM with eta = 1 is Ho's ancestral step
        np.testing.assert_allclose(rule.c[1:], sampler_rule("ddpm", rule.schedule).c[1:],
                                   rtol=1e-12, atol=1e-14)


def test_draw_for_draw_and_monte_carlo_moments():
    """DDPM: the scheduler's loop and run_sampler with the same generator agree to 1e-12 on
    the bimodal prior; on N(0.5, 2) the loop's mean and variance (n = 20000) are within 4
    standard errors of the exact law of the read rule."""
    sch = _ddpm(clip_sample=False)
    rule = read_scheduler(sch)
    assert _draw_for_draw(sch, rule, 256, seed=7) < 1e-12
    _moments_match_the_exact_law(sch, rule, seed=11)


def test_clipping_is_refused():
    with pytest.raises(NotAffine, match=r"not affine: at call \d+"):
        read_scheduler(_ddpm())                       # clip_sample=True is diffusers' default


def test_a_multistep_scheduler_the_adapter_was_not_written_for():
    """LMSDiscreteScheduler (order 4, VE coordinates, scale_model_input): a rule with history
    whose exact Gaussian law matches the loop's Monte Carlo moments; draw for draw on bimodal."""
    sch = diffusers.LMSDiscreteScheduler(num_train_timesteps=1000, beta_schedule="linear")
    sch.set_timesteps(30)
    rule = read_scheduler(sch)
    assert isinstance(rule, StageRule) and rule.multistep
    assert _draw_for_draw(sch, rule, 128, seed=3) < 1e-10
    _moments_match_the_exact_law(sch, rule, seed=5)


def test_float32_schedulers_equal_the_builtin_solvers():
    """Euler (it is DDIM in VE coordinates) and DPM-Solver multistep 2M / 3M: read with
    tol = 1e-6 (they compute the sample in float32), their W2 on a Gaussian prior equals the
    built-in rule's on the same alpha_bar sequence to float32 round-off."""
    prior = make_prior("gauss", 1)
    eu = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                          timestep_spacing="leading")
    eu.set_timesteps(50)
    with pytest.raises(NotAffine, match="float32"):
        read_scheduler(eu)
    r = read_scheduler(eu, tol=1e-6)
    b = sampler_rule("ddim", r.schedule, target="data")
    assert abs(exact_distance(prior, r, "w2").value - exact_distance(prior, b, "w2").value) < 1e-9
    for order, name in ((2, "dpm++2m"), (3, "dpm++3m-ref")):
        sch = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000,
                                                    beta_schedule="linear", solver_order=order)
        sch.set_timesteps(20)
        r = read_scheduler(sch, tol=1e-6)
        b = sampler_rule(name, r.schedule, target="data")
        wa, wb = exact_distance(prior, r, "w2").value, exact_distance(prior, b, "w2").value
        assert abs(wa - wb) < 5e-6, (name, wa, wb)
