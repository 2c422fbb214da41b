"""DPnP with inexact sub-samplers on the 2-D grid (theory.posterior.dpnp_grid2d): with A = I,
a diagonal Gaussian likelihood and a product prior the chain factorises over coordinates, so
the marginals of the 2-D grid law (affine pull-back + Fourier blur for the ULA PCS, per-axis
1-D chains for the DDS) must equal the 1-D grid laws of dpnp_grid (per-centre Langevin
kernels, 1-D chains), two different computations."""
import numpy as np
import pytest
import torch

from theory.posterior.dpnp_grid import DPnPGrid1D
from theory.posterior.dpnp_grid2d import DPnPGrid2D
from theory.posterior.likelihoods import make_likelihood
from theory.posterior.plug_and_play import DDSConfig, PCSConfig
from theory.priors import make_prior

Y = (0.7, -0.4)


@pytest.mark.parametrize("pcs,dds", [
    (PCSConfig("ula", 10, 0.1), DDSConfig("exact")),                   # 5 s
    pytest.param(PCSConfig("exact"), DDSConfig("sde", 5), marks=pytest.mark.slow),   # 12 s
])
def test_2d_marginals_equal_the_1d_laws(pcs, dds):
    """Mean and second moment of each marginal of law x_3 (eta = 0.7, h = 0.05) agree with
    the 1-D engine's to 1e-7, and the mass the 2-D steps lose is below 1e-6."""
    prior = make_prior("bimodal", 2)
    lik = make_likelihood("gaussian", torch.eye(2), list(Y), sigma=0.5)
    etas = [0.7] * 3
    g = DPnPGrid2D(prior, lik, etas, pcs, dds, h=0.05)
    out = g.run(etas)
    assert out["lost"][-1] < 1e-6
    law = out["laws"][-1]
    for i, y in enumerate(Y):
        lik1 = make_likelihood("gaussian", torch.eye(1), [y], sigma=0.5)
        r1 = DPnPGrid1D(g._coordinate_prior(i), lik1, etas, pcs, dds, h=0.05).run(etas)
        m, x = law.sum(1 - i), np.asarray(g.grid.axes[i])
        x1, l1 = r1["x"], r1["laws"][-1]
        assert abs(float(m @ x) - float(l1 @ x1)) < 1e-7
        assert abs(float(m @ x ** 2) - float(l1 @ x1 ** 2)) < 1e-7
