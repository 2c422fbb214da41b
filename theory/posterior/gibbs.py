r"""Split-Gibbs samplers: DPnP and PnP-DM, wrapped from :func:`theory.posterior.plug_and_play.run_dpnp`
(THEORY.md sections 6-7). The outer chain alternates the proximal consistency sampler (PCS,
likelihood only) and the denoising diffusion sampler (DDS, the reverse SDE of the prior
started at noise level :math:`\eta_k`: ``s + 1`` score calls). NFE per output = K (s + 1)
for K outer steps; a budget below 2K lowers K to budget // 2 (noted in the result).
PCS is exact for a linear-Gaussian likelihood and MALA (``pcs_steps`` steps) otherwise;
likelihood evaluations are not counted in NFE.

* **DPnP** (Xu & Chi, arXiv:2403.17042; official code github.com/x1xu/diffusion-plug-and-play):
  the reference annealing, :math:`\eta` = ``eta_max`` for ``k_start`` steps, then ``K - k_start``
  levels geometric down to ``eta_min`` (0.4, 0.16, 4, 16 in the official code).
* **PnP-DM** (Wu, Sun, Chen, Zhang, Yue, Bouman, NeurIPS 2024, arXiv:2405.18782; official code):
  the same split Gibbs chain with :math:`\rho_k = \max(\rho_0\,\mathrm{decay}^k, \rho_{min})`
  (:math:`\rho_0` = 10, decay 0.9, :math:`\rho_{min}` = 0.3 in its scripts), K = 40 outer steps
  here (so that :math:`\rho_k` reaches :math:`\rho_{min}` at k = 33). Its DDS is an EDM
  sampler; here the reverse SDE of :func:`theory.posterior.plug_and_play.dds_sde`, so PnP-DM is
  the named DPnP configuration "geometric :math:`\rho_k` with a floor".
"""
from __future__ import annotations

import numpy as np

from .annealing import AnnealingSchedule, make_annealing
from .inits import init_samples
from .interface import Knob, PosteriorSampler
from .plug_and_play import DDSConfig, PCSConfig, run_dpnp

__all__ = ["DPnP", "PnPDM"]


class DPnP(PosteriorSampler):
    """DPnP with the reference annealing (module docstring)."""

    name = "dpnp"
    family = "split-gibbs"
    reference = "Xu & Chi, arXiv:2403.17042 (official code x1xu/diffusion-plug-and-play)"
    KNOBS = {"K": Knob(16, "int", "outer steps (official: 4 + 12)"),
             "eta_max": Knob(0.4, "positive", "largest eta (official 0.4)"),
             "eta_min": Knob(0.16, "positive", "smallest eta (official 0.16)"),
             "k_start": Knob(4, "int", "steps at eta_max before the geometric decay (official 4)"),
             "pcs_steps": Knob(100, "int", "MALA steps of PCS for non-Gaussian likelihoods")}

    def min_nfe(self):
        return 4

    def _schedule(self, K: int) -> AnnealingSchedule:
        k = self.knobs
        ks = min(k["k_start"], K - 1)
        return make_annealing("reference", None, eta_max=k["eta_max"], eta_min=k["eta_min"],
                              k_start=ks, k=K - ks)

    def _sample(self, prior, lik, nfe, n, generator, device):
        K0 = self.knobs["K"]
        K = min(K0, nfe // 2)
        notes = [] if K == K0 else [f"budget {nfe} < 2 K: K lowered from {K0} to {K}"]
        sched = self._schedule(K)
        s = nfe // K - 1
        pcs = PCSConfig("exact") if lik.linear_gaussian else PCSConfig("mala", self.knobs["pcs_steps"])
        x0 = init_samples("standard-normal", prior, n, generator, device)
        res = run_dpnp(prior, lik, sched, x0, pcs=pcs, dds=DDSConfig("sde", s),
                       generator=generator, keep=False)
        extra = {"jvp_calls": 0}
        if res.acceptance:
            extra["pcs_acceptance"] = float(np.mean(res.acceptance))
        return res.final, {"nfe": res.score_calls, "notes": notes,
                           "knobs": {"K": K, "dds_steps": s, "etas": sched.describe()["etas"]},
                           "extra": extra}


class PnPDM(DPnP):
    """PnP-DM as a DPnP configuration (module docstring)."""

    name = "pnp-dm"
    reference = ("Wu, Sun, Chen, Zhang, Yue, Bouman, NeurIPS 2024, arXiv:2405.18782 "
                 "(rho schedule of its scripts)")
    KNOBS = {"K": Knob(40, "int", "outer steps (ours: rho_k reaches rho_min at k = 33)"),
             "rho0": Knob(10.0, "positive", "rho_0 (PnP-DM scripts: 10)"),
             "decay": Knob(0.9, "unit", "rho_{k+1} / rho_k (PnP-DM scripts: 0.9)"),
             "rho_min": Knob(0.3, "positive", "floor of rho_k (PnP-DM scripts: 0.3)"),
             "pcs_steps": Knob(100, "int", "MALA steps of PCS for non-Gaussian likelihoods")}

    def _schedule(self, K):
        k = self.knobs
        etas = np.maximum(k["rho0"] * k["decay"] ** np.arange(K), k["rho_min"])
        return AnnealingSchedule(etas, "pnp-dm", {"rho0": k["rho0"], "decay": k["decay"],
                                                  "rho_min": k["rho_min"]})
