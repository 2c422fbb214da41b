"""The README section "Your sampler, exactly": a diffusers scheduler measured exactly in a few
lines (the block between the markers is in README.md verbatim, and runs here)."""
import pathlib

import pytest

pytest.importorskip("diffusers")

# --- README example: your sampler, exactly (kept verbatim in README.md) ---
import diffusers
from theory import exact_distance, make_prior, sampler_rule
from theory.diffusers_adapter import read_scheduler


def test_ddim_scheduler_measured_exactly():
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                        clip_sample=False)      # clipping x0 is not affine
    scheduler.set_timesteps(50)
    rule = read_scheduler(scheduler)           # coefficients read by calling scheduler.step
    prior = make_prior("bimodal", 1)
    tv = exact_distance(prior, rule, "tv")     # against the data law: the loop ends at x0
    print(rule.T, rule.target, tv.value, tv.lower, tv.upper)
    assert tv.upper - tv.lower < 2e-3 * tv.value
    # the built-in DDIM on the scheduler's own timesteps and alpha_bar: the same numbers
    ddim = sampler_rule("ddim", rule.schedule, target="data")
    assert abs(exact_distance(prior, ddim, "tv").value - tv.value) < 1e-10
# --- end of README example ---


def test_readme_carries_the_example():
    src = pathlib.Path(__file__).read_text()
    marker = "# --- README example: your sampler, exactly (kept verbatim in README.md) ---\n"
    block = src.split(marker)[1].split("# --- end of README example ---")[0]
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    assert block.strip() in readme
