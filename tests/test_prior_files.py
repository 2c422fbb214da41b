"""Priors and likelihoods from files (theory.prior_files, theory.posterior.likelihoods):
round trips against the in-memory objects, exact distances of file priors against the presets,
the whitened likelihood against the full-covariance Gaussian density, the command line, and a
one-line error for every malformed file.

Cost: about 10 s on one core.
"""
import json
import math

import numpy as np
import pytest
import torch

from theory import exact_distance, make_prior, sampler_rule, li_schedule
from theory.posterior.likelihoods import load_likelihood
from theory.prior_files import load_prior
from theory.priors import Gaussian, GaussianMixture, ProductPrior, SubspaceMixture

pytestmark = pytest.mark.usefixtures("one_thread")

MIX = {"kind": "mixture", "weights": [0.3, 0.7], "means": [[-1.0, 0.5], [1.5, -0.5]],
       "covariances": [[[0.2, 0.05], [0.05, 0.1]], [[0.3, 0.0], [0.0, 0.2]]]}
PROD = {"kind": "product", "weights": [[0.5, 0.5], [1.0, 0.0]], "means": [[-2, 2], [0.5, 0]],
        "stds": [[0.25, 0.25], [1.2, 1.0]]}


def _write(tmp_path, name, data):
    p = tmp_path / name
    if name.endswith(".json"):
        p.write_text(json.dumps(data))
    else:
        np.savez(p, **{k: np.asarray(v) for k, v in data.items()})
    return p


def test_json_and_npz_round_trip(tmp_path):
    for ext in (".json", ".npz"):
        g = load_prior(_write(tmp_path, "mix" + ext, MIX))
        assert isinstance(g, GaussianMixture)
        x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        ref = GaussianMixture(MIX["weights"], MIX["means"], MIX["covariances"])
        assert torch.allclose(g.log_prob(x), ref.log_prob(x), atol=1e-13)
        p = load_prior(_write(tmp_path, "prod" + ext, PROD))
        assert isinstance(p, ProductPrior) and torch.allclose(
            p.score(x), ProductPrior(PROD["weights"], PROD["means"], PROD["stds"]).score(x))


def test_file_priors_get_the_presets_exact_distances(tmp_path):
    """The bimodal preset written as a product file and as a subspace file, and a
    one-component mixture (a Gaussian, exact in any d): the same exact TV as the presets."""
    rule = sampler_rule("li-sde", li_schedule(60))
    bim = {"kind": "product", "weights": [[0.5, 0.5]] * 3, "means": [[-2, 2]] * 3,
           "stds": [[0.25, 0.25]] * 3}
    assert exact_distance(load_prior(_write(tmp_path, "b.json", bim)), rule, "tv").value == \
        exact_distance(make_prior("bimodal", 3), rule, "tv").value
    sub = {"kind": "subspace", "d": 5, "inner": {"kind": "product", "weights": [[0.5, 0.5]] * 2,
                                                 "means": [[-2, 2]] * 2,
                                                 "stds": [[0.25, 0.25]] * 2}}
    for ext in (".json", ".npz"):
        data = sub if ext == ".json" else {"kind": "subspace", "d": 5, **{
            "inner_" + k: v for k, v in sub["inner"].items()}}
        p = load_prior(_write(tmp_path, "s" + ext, data))
        assert isinstance(p, SubspaceMixture)
        assert exact_distance(p, rule, "tv").value == \
            exact_distance(make_prior("subspace", 5), rule, "tv").value
    one = {"kind": "mixture", "weights": [1.0], "means": [[0.2, -0.1]],
           "covariances": [[[1.0, 0.3], [0.3, 0.5]]]}
    g = load_prior(_write(tmp_path, "g.json", one))
    assert isinstance(g, Gaussian)
    ref = Gaussian([0.2, -0.1], [[1.0, 0.3], [0.3, 0.5]])
    assert abs(exact_distance(g, rule, "w2").value - exact_distance(ref, rule, "w2").value) < 1e-15


@pytest.mark.parametrize("data,match", [
    ({"kind": "mixture", "weights": [0.5, 0.5], "means": [[0.0], [1.0]]}, "missing field"),
    ({**MIX, "colour": 1}, "unknown field"),
    ({**MIX, "kind": "flow"}, "unknown kind"),
    ({**MIX, "weights": [0.3, 0.6]}, "sum to 1"),
    ({**MIX, "covariances": [[[1.0, 2.0], [2.0, 1.0]], [[1.0, 0], [0, 1.0]]]}, "semi-definite"),
    ({**MIX, "means": [-1.0, 1.5]}, "2 dimension"),
    ({**PROD, "stds": [[0.25, -0.25], [1.0, 1.0]]}, "non-negative"),
    ({"kind": "subspace", "inner": PROD}, "basis"),
])
def test_malformed_prior_files_fail_in_one_line(tmp_path, data, match):
    p = _write(tmp_path, "bad.json", data)
    with pytest.raises(ValueError, match=match) as exc:
        load_prior(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_unreadable_prior_files(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    (tmp_path / "x.txt").write_text("{}")
    for name, match in (("x.json", "not valid JSON"), ("x.txt", "unknown format"),
                        ("none.json", "no such file")):
        with pytest.raises(ValueError, match=match):
            load_prior(tmp_path / name)


def test_whitened_likelihood_is_the_full_covariance_gaussian(tmp_path):
    """log p(y | x) of the loaded (whitened) likelihood minus the N(y; Ax, Sigma) log density
    is the same constant for every x (so posteriors and pi_eta are the same)."""
    A = [[1.0, 0.5, 0.0], [0.2, -1.0, 0.3]]
    S = [[0.3, 0.1], [0.1, 0.2]]
    y = [0.4, -0.2]
    lik = load_likelihood(_write(tmp_path, "l.json", {"operator": A, "y": y,
                                                     "noise_covariance": S}))
    x = np.random.default_rng(0).standard_normal((20, 3))
    r = np.asarray(y) - x @ np.asarray(A).T
    direct = -0.5 * np.einsum("ni,ij,nj->n", r, np.linalg.inv(S), r)
    diff = lik.log_lik(torch.as_tensor(x)).numpy() - direct
    assert np.ptp(diff) < 1e-12
    g = lik.grad(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(g, r @ np.linalg.inv(S) @ np.asarray(A), rtol=1e-12, atol=1e-12)
    npz = load_likelihood(_write(tmp_path, "l.npz", {"operator": A, "y": y, "sigma": 0.5}))
    assert npz.sigma == 0.5 and torch.equal(npz.A, torch.tensor(A, dtype=torch.float64))


@pytest.mark.parametrize("data,match", [
    ({"operator": [[1.0]], "y": [0.1]}, "exactly one"),
    ({"operator": [[1.0]], "y": [0.1], "sigma": 1.0, "noise_covariance": [[1.0]]}, "exactly one"),
    ({"operator": [[1.0, 2.0]], "y": [0.1, 0.2], "sigma": 1.0}, "rows"),
    ({"operator": [[1.0]], "y": [0.1], "noise_covariance": [[-1.0]]}, "positive definite"),
    ({"operator": [[1.0], [1.0]], "y": [0.1, 0.2], "noise_covariance": [[1.0, 0.5], [0.4, 1.0]]},
     "symmetric"),
    ({"y": [0.1], "sigma": 1.0}, "missing field"),
    ({"operator": [[1.0]], "y": [0.1], "sigma": 1.0, "mask": 1}, "unknown field"),
])
def test_malformed_likelihood_files_fail_in_one_line(tmp_path, data, match):
    p = _write(tmp_path, "bad.json", data)
    with pytest.raises(ValueError, match=match) as exc:
        load_likelihood(p)
    assert str(p) in str(exc.value)


def test_command_line_with_files(tmp_path, capsys):
    from experiments.cli.main import main
    g = _write(tmp_path, "g.json", {"kind": "gaussian", "mean": [0.5], "covariance": [[2.0]]})
    lk = _write(tmp_path, "l.json", {"operator": [[1.0]], "y": [0.3], "noise_covariance": [[0.25]]})
    assert main(["measure", "--prior-file", str(g), "--sampler", "ddim", "--T", "30",
                 "--metric", "w2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = exact_distance(ProductPrior([[1.0]], [[0.5]], [[math.sqrt(2.0)]]),
                         sampler_rule("ddim", li_schedule(30)), "w2").value
    assert abs(out["value"] - ref) < 1e-14 and len(out["config"]["prior_file_sha256"]) == 64
    assert main(["dpnp", "--prior-file", str(g), "--likelihood-file", str(lk), "--K", "3",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    # the same problem through the built-in options: sigma = 0.5 is the covariance 0.25
    assert main(["dpnp", "--prior-file", str(g), "--K", "3", "--y", "0.3", "--sigma", "0.5",
                 "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert res["config"]["operator"] == "file" and len(res["per_k"]) == 3
    for a, b in zip(res["per_k"], ref["per_k"]):
        for key in ("to_pi_eta", "to_posterior"):
            assert abs(a[key]["value"] - b[key]["value"]) < 1e-10, (a, b)
    assert main(["measure", "--prior-file", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["measure", "--prior-file", str(g), "--d", "3"]) == 2
    assert "describes d = 1" in capsys.readouterr().err
