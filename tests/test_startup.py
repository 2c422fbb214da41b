"""Start-up (issue 15): a tiny exact ``measure`` imports neither torch nor the scipy
submodules it does not use, and what replaced a library call to get there is bit-identical
to it (the local cumulative Simpson rule, the ``gauss`` preset's log-spaced variances, the
numpy-kept product parameters)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# runs the command line in this process, then reports what it imported
_WRAPPER = """
import json, sys
from experiments.cli.main import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "modules": sorted(sys.modules)}))
"""

# never on the numpy-only exact paths
HEAVY = ("torch", "ot", "networkx", "matplotlib", "scipy.stats", "scipy.interpolate",
         "scipy.integrate", "scipy.optimize", "scipy.sparse.linalg")


def _imported(*args):
    p = subprocess.run([sys.executable, "-c", _WRAPPER, *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    assert out["rc"] == 0, p.stderr
    return set(out["modules"]), json.loads(lines[0])


@pytest.mark.parametrize("prior", ["gauss", "bimodal"])
def test_tiny_exact_measure_imports_no_torch(prior):
    modules, result = _imported("measure", "--prior", prior, "--d", "1", "--T", "10", "--json")
    assert result["method_kind"] == "exact"
    assert result["provenance"]["torch"]           # the version is still recorded
    found = sorted(m for m in HEAVY if m in modules)
    assert not found, f"imported on the exact path: {found}"


def test_product_and_subspace_exact_paths_import_no_torch():
    for args in (["--prior", "gauss", "--d", "20", "--T", "10"],
                 ["--prior", "subspace", "--d", "4", "--T", "10"]):
        modules, _ = _imported("measure", *args, "--json")
        assert "torch" not in modules, args


def test_torch_version_recorded_without_torch_matches_the_module():
    import torch
    from importlib.metadata import version
    assert version("torch") == str(torch.__version__)


@pytest.mark.parametrize("n", list(range(1, 40)) + [1000, 1001, 2001, 2002])
def test_cumulative_simpson_is_scipys_bit_for_bit(n):
    from scipy.integrate import cumulative_simpson as scipy_cumulative_simpson

    from theory.laws.grid1d import cumulative_simpson
    rng = np.random.default_rng(n)
    for scale, dx in ((1.0, 0.01), (1e-7, 0.37), (1e5, 1.9)):
        for y in (scale * rng.standard_normal(n), np.exp(-rng.uniform(0, 700, n))):
            ours, ref = cumulative_simpson(y, dx), scipy_cumulative_simpson(y, dx=dx, initial=0.0)
            assert ours.shape == ref.shape
            assert np.array_equal(ours.view(np.int64), ref.view(np.int64))   # bits, signs too


def test_gauss_logspace_is_torchs_bit_for_bit():
    import torch

    from theory.priors import _logspace
    for d in list(range(2, 300)) + [1000, 1001, 4096, 10 ** 5 + 1]:
        ref = torch.logspace(-1, 1, d, dtype=torch.float64).numpy()
        assert np.array_equal(_logspace(-1.0, 1.0, d), ref), d


@pytest.mark.parametrize("name,d", [("bimodal", 1), ("bimodal", 5), ("gauss", 1), ("gauss", 7),
                                    ("subspace", 3)])
def test_numpy_kept_presets_read_as_before(name, d):
    """The tensors a preset hands out on first read are the ones it used to build at once."""
    import torch

    from theory.priors import ProductPrior, SubspaceMixture, make_prior
    p = make_prior(name, d)
    assert p.device == torch.device("cpu") and p.dtype == torch.float64
    inner = p.inner if isinstance(p, SubspaceMixture) else p
    if name == "bimodal" or name == "subspace":
        k = inner.dim
        w, mu, sd = torch.full((k, 2), 0.5), torch.tensor([-2.0, 2.0]).repeat(k, 1), \
            torch.full((k, 2), 0.25)
    else:
        lam = torch.ones(1, dtype=torch.float64) if d == 1 else \
            torch.logspace(-1, 1, d, dtype=torch.float64)
        w, mu, sd = torch.ones(d, 1), torch.zeros(d, 1), lam.sqrt()[:, None]
    eager = ProductPrior(w, mu, sd)                   # tensors in: built at once, as before
    groups = inner.coordinate_groups()
    assert groups == eager.coordinate_groups()
    for i, _ in groups:
        for a, b in zip(inner.coordinate_params(i), eager.coordinate_params(i)):
            assert np.array_equal(a, b)
    for attr in ("weights", "means", "stds"):
        a, b = getattr(inner, attr), getattr(eager, attr)
        assert a.dtype == b.dtype == torch.float64 and torch.equal(a, b)
    if isinstance(p, SubspaceMixture):
        assert torch.equal(p.basis, torch.eye(d, 2, dtype=torch.float64))
    x = torch.linspace(-3, 3, 11, dtype=torch.float64)[:, None].repeat(1, p.dim)
    ref = eager.score(x) if p is inner else None
    if ref is not None:
        assert torch.equal(p.score(x), ref)


def test_numpy_kept_prior_parameters_can_be_set():
    import torch

    from theory.priors import make_prior
    p = make_prior("bimodal", 2)
    p.means = torch.tensor([[-1.0, 1.0], [-3.0, 3.0]], dtype=torch.float64)
    assert p.coordinate_params(1)[1].tolist() == [-3.0, 3.0]
    assert len(p.coordinate_groups()) == 2
