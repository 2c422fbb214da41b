"""Reading the exact rule of a user's step function (theory.probe.read_step_sampler).

* affine step functions written from their papers' formulas (Ho's DDPM through x0_hat and
  eps_hat, EDM's Heun in DDIM's variables, the accelerated SDE with noise before the score)
  read back as the built-in rules' coefficients (1e-13), so their exact TV, KL and W2 and the
  intervals equal the built-ins' (1e-10 absolute);
* refusals that say where: a clipped x0_hat (not affine, names the step), a step with hidden
  state (the end-to-end check), noise not drawn from the generator;
* exact_distance of a StepSampler refuses (NoExactLaw) instead of failing on a missing
  attribute.

Cost: about 15 s on one core.
"""
import math

import numpy as np
import pytest
import torch

from theory import StepSampler, exact_distance, li_schedule, linear_schedule, make_prior
from theory import sampler_rule
from theory.checks import NoExactLaw
from theory.probe import NotAffine, read_step_sampler
from theory.samplers import AffineRule
from theory.stages import StageRule

from test_byo_sampler import my_ddpm as ddpm_step_sampler  # the README's step function

pytestmark = pytest.mark.usefixtures("one_thread")


def heun_step_sampler(T, target="q1"):
    s = li_schedule(T)
    ab, om = s.alpha_bar, s.one_minus_alpha_bar

    def step(y, t, score, generator):
        sig = lambda u: math.sqrt(om[u] / ab[u])          # noqa: E731
        yb, d = y / math.sqrt(ab[t]), sig(t - 1) - sig(t)
        e1 = -math.sqrt(om[t]) * score(y, t)
        if t == 1:
            return yb + d * e1
        e2 = -math.sqrt(om[t - 1]) * score(math.sqrt(ab[t - 1]) * (yb + d * e1), t - 1)
        return math.sqrt(ab[t - 1]) * (yb + d * (e1 + e2) / 2)
    return StepSampler("my-heun", step, s, deterministic=True, score_calls_per_step=2,
                       target=target)


def accel_sde_step_sampler(T):
    s = li_schedule(T)

    def step(y, t, score, generator):
        half = math.sqrt(s.beta[t] / 2)
        yp = y + half * torch.randn(y.shape, generator=generator, dtype=y.dtype)
        return (yp + s.beta[t] * score(yp, t)) / math.sqrt(s.alpha[t]) + \
            half * torch.randn(y.shape, generator=generator, dtype=y.dtype)
    return StepSampler("my-accel-sde", step, s)


def _same_distances(prior, a, b, metrics=("tv", "kl", "w2")):
    for m in metrics:
        x, y = exact_distance(prior, a, m), exact_distance(prior, b, m)
        for k in ("value", "lower", "upper"):
            assert abs(getattr(x, k) - getattr(y, k)) <= 1e-10, (m, k, x, y)


def test_ddpm_step_function_reads_as_the_builtin_ddpm():
    r = read_step_sampler(ddpm_step_sampler(40))
    b = sampler_rule("ddpm", linear_schedule(40))
    assert isinstance(r, AffineRule)
    for key in ("a", "b", "c", "pre_c"):
        np.testing.assert_allclose(getattr(r, key)[2:], getattr(b, key)[2:], rtol=1e-13, atol=1e-15)
    _same_distances(make_prior("bimodal", 1), r, b)


def test_heun_step_function_reads_as_the_builtin_heun():
    """Two score calls per step, the second at the next level: a StageRule whose laws are the
    built-in Heun's, for both targets."""
    for target in ("q1", "data"):
        r = read_step_sampler(heun_step_sampler(15, target))
        assert isinstance(r, StageRule) and r.score_calls == sum(
            2 if t > 1 else 1 for t in r.steps)
        _same_distances(make_prior("bimodal", 1), r,
                        sampler_rule("heun", li_schedule(15), target=target), ("tv", "w2"))


def test_noise_before_the_score_reads_as_pre_c():
    r = read_step_sampler(accel_sde_step_sampler(30))
    b = sampler_rule("accel-sde", li_schedule(30))
    for key in ("a", "b", "c", "pre_c"):
        np.testing.assert_allclose(getattr(r, key)[2:], getattr(b, key)[2:], rtol=1e-13, atol=1e-15)
    _same_distances(make_prior("gauss", 2), r, b, ("tv", "w2"))


def test_non_affine_step_is_refused_with_where():
    s = linear_schedule(20)
    ab, om = s.alpha_bar, s.one_minus_alpha_bar

    def clipped(y, t, score, g):
        x0 = ((y + om[t] * score(y, t)) / math.sqrt(ab[t])).clamp(-1, 1)
        eps = (y - math.sqrt(ab[t]) * x0) / math.sqrt(om[t])
        return math.sqrt(ab[t - 1]) * x0 + math.sqrt(om[t - 1]) * eps
    with pytest.raises(NotAffine, match=r"not affine: at step t = 20 \(its output\)"):
        read_step_sampler(StepSampler("clipped", clipped, s, deterministic=True))


def test_hidden_state_is_caught_end_to_end():
    """A step that keeps the previous score in a closure (a two-step rule the probe cannot see
    from one call) is refused by the end-to-end comparison."""
    s = li_schedule(20)
    memory = {}

    def stateful(y, t, score, g):
        sc = score(y, t)
        prev = memory.get("s", torch.zeros_like(sc))
        memory["s"] = sc
        return (y + s.beta[t] * (1.5 * sc - 0.5 * prev) / 2) / math.sqrt(s.alpha[t])
    with pytest.raises(NotAffine, match="keeps state"):
        read_step_sampler(StepSampler("stateful", stateful, s, deterministic=True))
    memory.clear()

    def stateful_zero_start(y, t, score, g):   # the same, without a difference on zero inputs
        sc = score(y, t)
        out = (y + s.beta[t] * sc) / math.sqrt(s.alpha[t]) + 0.3 * memory.get("y", 0 * y)
        memory["y"] = y
        return out
    with pytest.raises(NotAffine, match="keeps state"):
        read_step_sampler(StepSampler("stateful-2", stateful_zero_start, s, deterministic=True))


def test_noise_not_from_the_generator_is_refused():
    s = linear_schedule(10)

    def global_rng(y, t, score, g):
        return y + s.beta[t] * score(y, t) + math.sqrt(s.beta[t]) * torch.randn(y.shape,
                                                                                dtype=y.dtype)
    with pytest.raises(ValueError):
        read_step_sampler(StepSampler("global-rng", global_rng, s))


def test_exact_distance_of_a_step_sampler_refuses():
    with pytest.raises(NoExactLaw, match="read_step_sampler"):
        exact_distance(make_prior("gauss", 1), ddpm_step_sampler(10), "tv")
