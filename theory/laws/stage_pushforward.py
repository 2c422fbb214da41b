r"""Push-forward densities of deterministic multi-stage and multistep rules in any d.

A deterministic :class:`~theory.stages.StageRule` is a map :math:`Y_{\mathrm{stop}} = \Phi(z)`
of the start :math:`z = Y_T`. Its Jacobian follows the stages by the chain rule: with the state
:math:`U` and its Jacobian :math:`dU/dz`,

.. math::
    \frac{dX_i}{dz} = \sum_k P_{ik}\frac{dU_k}{dz} + \sum_{j<i} Q_{ij}\frac{dS_j}{dz}, \qquad
    \frac{dS_i}{dz} = \nabla s(X_i;\bar\alpha^{(i)})\,\frac{dX_i}{dz}, \qquad
    \frac{dU'}{dz} = A\frac{dU}{dz} + B\frac{dS}{dz},

so that :math:`\log p(\Phi(z)) = \log p_{\mathrm{start}}(z) - \log|\det d\Phi/dz|`
(the analytic score Jacobian of THEORY.md section 4; diagonal for a product prior, dense
otherwise). Unlike a one-stage step, a multi-stage step's Jacobian is not symmetric, so the
log determinant comes from an LU factorisation (:func:`torch.linalg.slogdet`); a point where
it is not positive is reported as folded (a necessary condition only: the change of
variables also needs the map to be injective). Only the forward direction exists here (the
history of a multistep rule cannot be inverted step by step), so the Monte Carlo TV of
:mod:`theory.distances.pushforward` uses its one-sided estimator :math:`E_p[(1-e^{-L})_+]`.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..priors import Prior, ProductPrior
from ..stages import StageRule
from .pushforward import F64, FlowResult, FoldError, _auto_batch, _check_points, log_start

__all__ = ["stage_flow_forward"]


class _Levels:
    """Forward marginals of the prior by noise level (the last few kept: a step's stages
    alternate between two or three levels)."""

    def __init__(self, prior, keep=8):
        self.prior, self.keep, self._cache = prior, keep, {}

    def __call__(self, abar):
        abar = float(abar)
        if abar not in self._cache:
            if len(self._cache) >= self.keep:
                self._cache.pop(next(iter(self._cache)))
            self._cache[abar] = self.prior.marginal(abar)
        return self._cache[abar]


def _forward_batch(rule: StageRule, levels, z, diagonal):
    n, d = z.shape
    m = rule.m
    U = [z.clone()] + [torch.zeros_like(z) for _ in range(m - 1)]
    if diagonal:
        dU = [torch.ones_like(z)] + [torch.zeros_like(z) for _ in range(m - 1)]
    else:
        eye = torch.eye(d, dtype=F64, device=z.device).expand(n, d, d)
        dU = [eye.clone()] + [torch.zeros(n, d, d, dtype=F64, device=z.device)
                              for _ in range(m - 1)]
    for t in rule.steps:
        tab = rule.tableaux[t]
        need = tab.needed
        S, dS = [None] * tab.s, [None] * tab.s
        for i in range(tab.s):
            if not need[i]:
                continue
            X = sum(float(tab.P[i, k]) * U[k] for k in range(m))
            dX = sum(float(tab.P[i, k]) * dU[k] for k in range(m))
            for j in range(i):
                if tab.Q[i, j] != 0:
                    X = X + float(tab.Q[i, j]) * S[j]
                    dX = dX + float(tab.Q[i, j]) * dS[j]
            marg = levels(tab.abar[i])
            S[i] = marg.score(X)
            if diagonal:
                dS[i] = marg.score_jacobian_diag(X) * dX
            else:
                dS[i] = torch.bmm(marg.score_jacobian(X), dX)
        newU, newdU = [], []
        for k in range(m):
            v = sum(float(tab.A[k, k2]) * U[k2] for k2 in range(m))
            dv = sum(float(tab.A[k, k2]) * dU[k2] for k2 in range(m))
            for i in range(tab.s):
                if tab.B[k, i] != 0:
                    v = v + float(tab.B[k, i]) * S[i]
                    dv = dv + float(tab.B[k, i]) * dS[i]
            newU.append(v + 0 * U[0])
            newdU.append(dv + 0 * dU[0])
        U, dU = newU, newdU
    if diagonal:
        J = dU[0]
        folded = ~(J > 0).all(1)
        logdet = torch.log(J.abs().clamp_min(1e-300)).sum(1)
    else:
        sign, logdet = torch.linalg.slogdet(dU[0])
        folded = ~(sign > 0)
    logdet = torch.where(folded, torch.full_like(logdet, float("nan")), logdet)
    return U[0], logdet, folded


def stage_flow_forward(prior: Prior, rule: StageRule, z, *,
                       batch_size: Optional[int] = None, on_fold: str = "raise") -> FlowResult:
    r"""Map start points ``z`` (n, d) through a deterministic :class:`StageRule` with the log
    determinant of the map (module docstring).

    Parameters
    ----------
    prior : Prior
        Its forward marginals give the exact score and score Jacobian at every stage level.
    rule : StageRule
        Deterministic (``rule.deterministic``).
    z : array-like, shape (n, d)
    batch_size : int, optional
        Rows per batch (default about 4e6 / d^2, times 1/m for the history's Jacobians).
    on_fold : {"raise", "report"}
        What to do where the Jacobian determinant is not positive.
    """
    if not isinstance(rule, StageRule):
        raise ValueError("stage_flow_forward needs a StageRule")
    if not rule.deterministic:
        raise ValueError(f"the push-forward density needs a deterministic rule; {rule.name!r} "
                         "has noise")
    if on_fold not in ("raise", "report"):
        raise ValueError(f"on_fold must be 'raise' or 'report', got {on_fold!r}")
    z = _check_points(prior, z, "z")
    n, d = z.shape
    diagonal = isinstance(prior, ProductPrior)
    bs = max(1, _auto_batch(d if not diagonal else 1, batch_size) // rule.m)
    levels = _Levels(prior)
    x = torch.empty_like(z)
    logdet = torch.empty(n, dtype=F64, device=z.device)
    folded = torch.zeros(n, dtype=torch.bool, device=z.device)
    for i in range(0, n, bs):
        sl = slice(i, min(i + bs, n))
        x[sl], logdet[sl], folded[sl] = _forward_batch(rule, levels, z[sl], diagonal)
    nf = int(folded.sum())
    if nf and on_fold == "raise":
        raise FoldError(f"{nf} of {n} trajectories of {rule.name!r} have a Jacobian whose "
                        "determinant is not positive: the map may fold and the "
                        "change-of-variables density is invalid")
    return FlowResult(z=z, x=x, log_det=logdet, log_p=log_start(prior, rule, z) - logdet,
                      folded=folded, info={"n_folded": nf, "batch_size": bs,
                                           "jacobian": "diagonal" if diagonal else "dense (LU)"})
