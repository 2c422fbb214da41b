r"""Factored gradient methods for low-rank estimation: GD, ScaledGD, ScaledGD(lambda).

Two factors (sensing, completion, robust PCA), :math:`X = LR^\top`, :math:`L\in\mathbb R^{n_1\times r}`,
:math:`R\in\mathbb R^{n_2\times r}`, from the spectral initialisation
:math:`L_0 = U_0\Sigma_0^{1/2}`, :math:`R_0 = V_0\Sigma_0^{1/2}` (top-r SVD of the problem's
spectral matrix, :meth:`spectral_matrix`):

* **ScaledGD** (Tong, Ma, Chi, arXiv:2005.08898); both right-hand sides use
  :math:`(L_t, R_t)`:

  .. math::
      L_{t+1} = L_t - \eta\,\nabla_L f(L_t, R_t)\,(R_t^\top R_t)^{-1},\qquad
      R_{t+1} = R_t - \eta\,\nabla_R f(L_t, R_t)\,(L_t^\top L_t)^{-1}.

  Theorem (matrix sensing, RIP and spectral initialisation): for
  :math:`0 < \eta \le 2/3`, :math:`\mathrm{dist}(F_t, F_\star) \le (1 - 0.6\eta)^t\,0.1\,\sigma_r(X_\star)`
  and :math:`\|L_tR_t^\top - X_\star\|_F \le (1-0.6\eta)^t\,0.15\,\sigma_r(X_\star)`:
  a contraction rate free of kappa. (Rate and step range as in THEORY.md; the prefactors
  0.1 and 0.15 are recalled from the paper's matrix-sensing theorem, not re-read: the
  suite tests only the rate.) The RIP it assumes needs far more measurements than the
  paper's experiments use (m = 5nr): there the measured rate is near 0.92 at eta = 0.5,
  against 1 - 0.6 eta = 0.7 (tests/test_lowrank_rates.py).
* **GD** (vanilla factored gradient descent, the paper's baseline):
  :math:`L_{t+1} = L_t - (\eta/\sigma_1(X_\star))\nabla_L f`, same for R (the code's step
  0.5/sigma_max); it needs O(kappa log(1/eps)) iterations.

The **factor distance** of the ScaledGD paper (its Lyapunov function), with
:math:`L_\star = U_\star\Sigma_\star^{1/2}`, :math:`R_\star = V_\star\Sigma_\star^{1/2}`:

.. math::
    \mathrm{dist}^2(F, F_\star) = \inf_{Q\in GL(r)}
    \|(LQ - L_\star)\Sigma_\star^{1/2}\|_F^2 + \|(RQ^{-\top} - R_\star)\Sigma_\star^{1/2}\|_F^2 .

It is computed by Levenberg-Marquardt on Q (a nonlinear least-squares problem in r^2
unknowns; the Gauss-Newton matrix is assembled from r x r Gram matrices, never from the
2nr x r^2 Jacobian), warm-started from the previous iterate's Q along a trajectory and,
at first, from the least-squares alignment :math:`Q = (L^\top L)^{-1}L^\top L_\star`.

One factor (PSD sensing), :math:`M = XX^\top`, :math:`X\in\mathbb R^{n\times r'}`, :math:`r'\ge r`,
from a small random start :math:`X_0 = \alpha G`, entries of G i.i.d. N(0, 1/n):

* **ScaledGD(lambda)** (Xu, Shen, Ma, Chi, arXiv:2302.01186):
  :math:`X_{t+1} = X_t - \eta\,\nabla f(X_t)\,(X_t^\top X_t + \lambda I)^{-1}`,
  :math:`f(X) = \tfrac14\|\mathcal A(XX^\top) - y\|^2`; theorem: with
  :math:`\lambda \asymp \sigma_{\min}(M_\star)`, :math:`\eta \asymp 1` and alpha small enough,
  :math:`\|X_tX_t^\top - M_\star\|_F \lesssim \varepsilon\,\sigma_{\min}(M_\star)` within
  :math:`O(\log\kappa\,\log(\kappa n) + \log(1/\varepsilon))` iterations (the talk's
  statement, seed 002; the 1/4 in f is THEORY.md's: a 1/2 would double the effective eta).
* **overparameterised GD** (its baseline): :math:`X_{t+1} = X_t - (\eta/\sigma_1)\nabla f(X_t)`.

The PSD paper measures :math:`\|X_tX_t^\top - M_\star\|_F`; no factor distance is defined for
r' > r, so those runs carry ``factor_distance = None``.

Every run records, for t = 0, 1, ..., the relative error
:math:`\|L_tR_t^\top - X_\star\|_F/\|X_\star\|_F` (or with :math:`X_tX_t^\top`) and
(two-factor runs) the factor distance; it stops at ``iterations``, when the relative error
falls below ``stop_tol`` (the float64 floor is near 1e-15), or when it exceeds
``diverge_tol`` or is not finite.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from .operators import Seed, _generator, _randn
from .problems import _Asymmetric, PSDSensing, GroundTruth

__all__ = ["Trajectory", "factor_distance", "spectral_init", "gd", "scaled_gd",
           "scaled_gd_lambda", "overparam_gd", "run_algorithm", "ALGORITHMS"]

ALGORITHMS = ("gd", "scaledgd", "scaledgd-lambda", "overparam-gd")


# ----------------------------------------------------------------------------- checks
def _check_eta(eta) -> float:
    try:
        e = float(eta)
    except (TypeError, ValueError):
        raise ValueError(f"step size eta must be a positive number, got {eta!r}") from None
    if not (e > 0) or not math.isfinite(e):
        raise ValueError(f"step size eta must be a positive finite number, got {eta!r}")
    return e


def _check_iterations(T) -> int:
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {T!r}")
    return int(T)


def _check_tols(stop_tol, diverge_tol):
    s, d = float(stop_tol), float(diverge_tol)
    if not (s >= 0) or not (d > s):
        raise ValueError(f"need 0 <= stop_tol < diverge_tol, got {stop_tol!r}, {diverge_tol!r}")
    return s, d


# ----------------------------------------------------------------------------- trajectory
@dataclass
class Trajectory:
    """One run: per-iteration errors (index t = 0 is the initial point).

    Attributes
    ----------
    algorithm : str
    eta : float
        The step size parameter (GD's actual step is ``eta / sigma_max``).
    rel_error : np.ndarray, shape (T+1,)
        ``||X_t - X*||_F / ||X*||_F``.
    factor_distance : np.ndarray, shape (T+1,), or None
        The ScaledGD paper's distance (two-factor runs with tracking on).
    stop_reason : {"iterations", "converged", "diverged"}
    params : dict
        The remaining settings (lambda, alpha, rank, ...).
    """

    algorithm: str
    eta: float
    rel_error: np.ndarray
    factor_distance: Optional[np.ndarray]
    stop_reason: str
    params: dict = field(default_factory=dict)
    final: tuple = field(default=(), repr=False)

    @property
    def iterations(self) -> int:
        """Number of iterations run (T)."""
        return len(self.rel_error) - 1

    def iterations_to(self, tol: float = 1e-10, quantity: str = "rel_error") -> Optional[int]:
        """First t with ``quantity[t] <= tol`` (None if never)."""
        from .rates import iterations_to
        return iterations_to(self.series(quantity), tol)

    def series(self, quantity: str = "rel_error") -> np.ndarray:
        if quantity == "rel_error":
            return self.rel_error
        if quantity == "factor_distance":
            if self.factor_distance is None:
                raise ValueError(f"{self.algorithm} run has no factor distance")
            return self.factor_distance
        raise ValueError(f"unknown quantity {quantity!r}; choose rel_error or factor_distance")

    def to_dict(self) -> dict:
        """JSON-able summary (lists of floats; NaN for missing)."""
        return {"algorithm": self.algorithm, "eta": self.eta,
                "rel_error": [float(v) for v in self.rel_error],
                "factor_distance": (None if self.factor_distance is None
                                    else [float(v) for v in self.factor_distance]),
                "stop_reason": self.stop_reason,
                "iterations": self.iterations, "params": dict(self.params)}


# ----------------------------------------------------------------------------- factor distance
def _kron(M, N):
    r = M.shape[0]
    return (M[:, None, :, None] * N[None, :, None, :]).reshape(r * N.shape[0], -1)


class _FactorDistance:
    """Levenberg-Marquardt for the factor distance, in float64 numpy (r x r problems are
    dominated by per-call overhead in torch), warm-started along a trajectory."""

    def __init__(self, truth: GroundTruth):
        self.Ls = truth.L.detach().cpu().double().numpy()
        self.Rs = truth.R.detach().cpu().double().numpy()
        self.sig = truth.sigma.detach().cpu().double().numpy()
        self.s = np.sqrt(self.sig)
        r = self.sig.size
        self.r = r
        self.Q = None

    def _parts(self, L, R, Q):
        QiT = np.linalg.inv(Q).T
        A = R @ QiT
        E1 = (L @ Q - self.Ls) * self.s
        E2 = (A - self.Rs) * self.s
        return E1, E2, A, QiT, float((E1 * E1).sum() + (E2 * E2).sum())

    def _starts(self, L, R):
        out = []
        if self.Q is not None:
            out.append(self.Q)
        try:  # least-squares alignments (normal equations: r x r solves)
            out.append(np.linalg.solve(L.T @ L, L.T @ self.Ls))
            P = np.linalg.solve(R.T @ R, R.T @ self.Rs)  # R Q^{-T} ~ R*  =>  Q = P^{-T}
            out.append(np.linalg.inv(P).T)
        except np.linalg.LinAlgError:
            pass
        return out

    def __call__(self, L, R, Q0=None, max_iter=100, rtol=1e-10):
        L = np.asarray(L, dtype=float)
        R = np.asarray(R, dtype=float)
        r, s, sig = self.r, self.s, self.sig
        best = None
        for Q in ([Q0] if Q0 is not None else self._starts(L, R)):
            try:
                parts = self._parts(L, R, Q)
            except np.linalg.LinAlgError:
                continue
            if math.isfinite(parts[-1]) and (best is None or parts[-1] < best[1][-1]):
                best = (Q, parts)
        if best is None:
            raise ValueError("no invertible starting alignment for the factor distance")
        Q, (E1, E2, A, QiT, obj) = best
        n2 = r * r
        H1 = _kron(L.T @ L, np.diag(sig))
        eye = np.eye(n2)
        mu = 1e-8
        for _ in range(max_iter):
            if obj == 0.0:
                break
            B = QiT * s
            # Gauss-Newton matrix J^T J: the R-block's permuted kron(A^T A, B B^T) equals
            # kron(B B^T, A^T A) in row-major vec(dQ)
            H = H1 + _kron(B @ B.T, A.T @ A)
            g = ((L.T @ E1) * s).reshape(-1) - (B @ E2.T @ A).reshape(-1)
            scale = float(np.trace(H)) / n2
            accepted = False
            for _ in range(40):
                try:
                    dz = np.linalg.solve(H + mu * scale * eye, -g)
                except np.linalg.LinAlgError:
                    mu *= 10.0
                    continue
                predicted = -float(g @ dz)  # model decrease of the squared distance
                if predicted <= rtol * obj:
                    break
                try:
                    parts = self._parts(L, R, Q + dz.reshape(r, r))
                except np.linalg.LinAlgError:
                    mu *= 10.0
                    continue
                if math.isfinite(parts[-1]) and parts[-1] <= obj:
                    accepted = True
                    break
                mu *= 10.0
            if not accepted:
                break
            decrease = obj - parts[-1]
            Q = Q + dz.reshape(r, r)
            E1, E2, A, QiT, obj = parts
            mu = max(mu / 10.0, 1e-14)
            if decrease <= rtol * (obj + decrease):
                break
        self.Q = Q
        return math.sqrt(max(obj, 0.0)), Q


def factor_distance(L: torch.Tensor, R: torch.Tensor, truth: GroundTruth,
                    Q0: Optional[torch.Tensor] = None, *, max_iter: int = 100,
                    rtol: float = 1e-10):
    r"""The ScaledGD paper's distance between ``(L, R)`` and the balanced truth factors.

    .. math::
        \mathrm{dist}(F, F_\star) = \Big(\inf_{Q\in GL(r)}
        \|(LQ - L_\star)\Sigma_\star^{1/2}\|_F^2 + \|(RQ^{-\top} - R_\star)\Sigma_\star^{1/2}\|_F^2\Big)^{1/2}

    (Tong, Ma, Chi, arXiv:2005.08898; the talk's slide states the same), minimised over Q
    by Levenberg-Marquardt from the better of the two least-squares alignments
    (:math:`Q = L^+L_\star` and :math:`Q = ((R^+R_\star))^{-\top}`), or from ``Q0``.
    The Gauss-Newton matrix is assembled from r x r Gram matrices.

    Parameters
    ----------
    L : torch.Tensor, shape (n1, r)
    R : torch.Tensor, shape (n2, r)
    truth : GroundTruth
    Q0 : torch.Tensor, shape (r, r), optional
        Starting alignment.
    max_iter : int
        Levenberg-Marquardt iterations at most.
    rtol : float
        Stop when an accepted step lowers the squared distance by less than ``rtol`` of it.

    Returns
    -------
    dist : float
    Q : torch.Tensor, shape (r, r)
        The minimising alignment (float64, on L's device).
    """
    r = truth.r
    if L.shape != (truth.n1, r) or R.shape != (truth.n2, r):
        raise ValueError(f"factors must have shapes ({truth.n1}, {r}) and ({truth.n2}, {r}), "
                         f"got {tuple(L.shape)} and {tuple(R.shape)}")
    fd = _FactorDistance(truth)
    q0 = None if Q0 is None else Q0.detach().cpu().double().numpy()
    d, Q = fd(L.detach().cpu().double().numpy(), R.detach().cpu().double().numpy(), q0,
              max_iter=max_iter, rtol=rtol)
    return d, torch.as_tensor(Q, dtype=torch.float64, device=L.device)


# ----------------------------------------------------------------------------- initialisation
def spectral_init(problem: _Asymmetric, rank: Optional[int] = None):
    r"""Spectral initialisation: top-``rank`` SVD :math:`U_0\Sigma_0V_0^\top` of the problem's
    spectral matrix, :math:`L_0 = U_0\Sigma_0^{1/2}`, :math:`R_0 = V_0\Sigma_0^{1/2}`.

    Returns
    -------
    L0 : torch.Tensor, shape (n1, rank)
    R0 : torch.Tensor, shape (n2, rank)
    """
    if not isinstance(problem, _Asymmetric):
        raise ValueError(f"spectral_init needs a two-factor problem, got {type(problem).__name__}")
    r = problem.truth.r if rank is None else int(rank)
    if not (1 <= r <= min(problem.truth.n1, problem.truth.n2)):
        raise ValueError(f"rank {r} must lie in [1, min(n1, n2)]")
    M = problem.spectral_matrix()
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    sq = S[:r].sqrt()
    return U[:, :r] * sq, Vh[:r].T * sq


def _rel(X, Xs, fro):
    return (X - Xs).norm() / fro


# ----------------------------------------------------------------------------- two-factor loop
def _run_two_factor(problem, algorithm, eta, iterations, init, track_distance, stop_tol,
                    diverge_tol, step):
    if not isinstance(problem, _Asymmetric):
        raise ValueError(f"{algorithm} runs on sensing, completion or rpca problems, "
                         f"got {type(problem).__name__}")
    eta = _check_eta(eta)
    T = _check_iterations(iterations)
    stop_tol, diverge_tol = _check_tols(stop_tol, diverge_tol)
    truth = problem.truth
    if init is None:
        L, R = spectral_init(problem)
    else:
        L, R = (t.to(device=problem.device, dtype=problem.dtype).clone() for t in init)
        if L.shape != (truth.n1, truth.r) or R.shape != (truth.n2, truth.r):
            raise ValueError(f"init factors must have shapes ({truth.n1}, {truth.r}) and "
                             f"({truth.n2}, {truth.r})")
    Xs, fro = truth.X, truth.fro
    if algorithm == "gd":
        gd_step = eta / truth.sigma_max if step is None else _check_eta(step)
    errs, dists = [], []
    fd = _FactorDistance(truth) if track_distance else None
    reason = "iterations"
    for t in range(T + 1):
        X = L @ R.T
        e = float(_rel(X, Xs, fro))
        errs.append(e)
        if track_distance:
            d = float("nan")
            if math.isfinite(e) and e < 1e3:
                try:
                    d, _ = fd(L.detach().cpu().numpy(), R.detach().cpu().numpy())
                except (ValueError, np.linalg.LinAlgError):
                    fd.Q = None
            dists.append(d)
        if not math.isfinite(e) or e > diverge_tol:
            reason = "diverged"
            break
        if e <= stop_tol:
            reason = "converged"
            break
        if t == T:
            break
        Z = problem.grad_matrix(X)
        gL, gR = Z @ R, Z.T @ L
        if algorithm == "scaledgd":
            Ln = L - eta * torch.linalg.solve(R.T @ R, gL.T).T
            Rn = R - eta * torch.linalg.solve(L.T @ L, gR.T).T
        else:
            Ln = L - gd_step * gL
            Rn = R - gd_step * gR
        L, R = Ln, Rn
    params = {"step": (eta if algorithm == "scaledgd" else gd_step), "init": (
        "spectral" if init is None else "given")}
    return Trajectory(algorithm, eta, np.array(errs), np.array(dists) if track_distance else None,
                      reason, params, final=(L, R))


def scaled_gd(problem, eta: float = 0.5, iterations: int = 1000, *, init=None,
              track_distance: bool = True, stop_tol: float = 1e-14,
              diverge_tol: float = 1e3) -> Trajectory:
    r"""ScaledGD from the spectral initialisation (or ``init = (L0, R0)``).

    :math:`L \leftarrow L - \eta\nabla_L f\,(R^\top R)^{-1}`,
    :math:`R \leftarrow R - \eta\nabla_R f\,(L^\top L)^{-1}` (simultaneous).

    Parameters
    ----------
    problem : MatrixSensing, MatrixCompletion or RobustPCA
    eta : float > 0
        Step size (theorem: 0 < eta <= 2/3; the paper's code: 0.5).
    iterations : int
        Most iterations.
    init : (torch.Tensor, torch.Tensor), shapes (n1, r), (n2, r), optional
    track_distance : bool
        Record the factor distance at every iterate.
    stop_tol, diverge_tol : float
        Stop when the relative error is at most ``stop_tol`` or above ``diverge_tol``.

    Returns
    -------
    Trajectory
    """
    return _run_two_factor(problem, "scaledgd", eta, iterations, init, track_distance,
                           stop_tol, diverge_tol, None)


def gd(problem, eta: float = 0.5, iterations: int = 1000, *, init=None, step=None,
       track_distance: bool = True, stop_tol: float = 1e-14,
       diverge_tol: float = 1e3) -> Trajectory:
    r"""Vanilla factored GD, :math:`L \leftarrow L - \mu\nabla_L f`, :math:`R \leftarrow R - \mu\nabla_R f`,
    with :math:`\mu = \eta/\sigma_1(X_\star)` (the paper's code) unless ``step`` gives mu.

    Parameters as :func:`scaled_gd`; ``step`` : float > 0, optional.

    Returns
    -------
    Trajectory
    """
    return _run_two_factor(problem, "gd", eta, iterations, init, track_distance,
                           stop_tol, diverge_tol, step)


# ----------------------------------------------------------------------------- one-factor loop
def _small_init(problem, rank, alpha, seed):
    n = problem.truth.n1
    g = _generator(seed)
    return alpha * _randn((n, rank), g, problem.device, problem.dtype) / math.sqrt(n)


def _run_psd(problem, algorithm, rank, eta, lam, alpha, iterations, seed, init, stop_tol,
             diverge_tol):
    if not isinstance(problem, PSDSensing):
        raise ValueError(f"{algorithm} runs on a psd-sensing problem, got {type(problem).__name__}")
    truth = problem.truth
    n, r = truth.n1, truth.r
    rank = r if rank is None else rank
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or not (r <= rank <= n):
        raise ValueError(f"rank must be an integer with r = {r} <= rank <= n = {n}, got {rank!r}")
    rank = int(rank)
    eta = _check_eta(eta)
    T = _check_iterations(iterations)
    stop_tol, diverge_tol = _check_tols(stop_tol, diverge_tol)
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"initialisation scale alpha must be a positive number, got {alpha!r}") from None
    if not (alpha > 0) or not math.isfinite(alpha):
        raise ValueError(f"initialisation scale alpha must be a positive number, got {alpha!r}")
    if algorithm == "scaledgd-lambda":
        lam = truth.sigma_min if lam is None else lam
        try:
            lam = float(lam)
        except (TypeError, ValueError):
            raise ValueError(f"damping lambda must be a positive number, got {lam!r}") from None
        if not (lam > 0) or not math.isfinite(lam):
            raise ValueError(f"damping lambda must be a positive number, got {lam!r}")
    if init is None:
        X = _small_init(problem, rank, alpha, seed)
    else:
        X = init.to(device=problem.device, dtype=problem.dtype).clone()
        if X.shape != (n, rank):
            raise ValueError(f"init must have shape ({n}, {rank}), got {tuple(X.shape)}")
    Ms, fro = truth.X, truth.fro
    eye = torch.eye(rank, dtype=problem.dtype, device=problem.device)
    step = eta / truth.sigma_max
    errs = []
    reason = "iterations"
    for t in range(T + 1):
        e = float(_rel(X @ X.T, Ms, fro))
        errs.append(e)
        if not math.isfinite(e) or e > diverge_tol:
            reason = "diverged"
            break
        if e <= stop_tol:
            reason = "converged"
            break
        if t == T:
            break
        G = problem.gradient(X)
        if algorithm == "scaledgd-lambda":
            X = X - eta * torch.linalg.solve(X.T @ X + lam * eye, G.T).T
        else:
            X = X - step * G
    params = {"rank": rank, "alpha": alpha, "init": "small random" if init is None else "given"}
    if algorithm == "scaledgd-lambda":
        params["lambda"] = lam
    else:
        params["step"] = step
    return Trajectory(algorithm, eta, np.array(errs), None, reason, params, final=(X,))


def scaled_gd_lambda(problem: PSDSensing, rank: Optional[int] = None, eta: float = 0.5,
                     lam: Optional[float] = None, alpha: float = 1e-9, iterations: int = 1000,
                     *, seed: Seed = 0, init=None, stop_tol: float = 1e-14,
                     diverge_tol: float = 1e3) -> Trajectory:
    r"""ScaledGD(lambda) from a small random start :math:`X_0 = \alpha G`, G entries N(0, 1/n).

    :math:`X \leftarrow X - \eta\,\nabla f(X)(X^\top X + \lambda I)^{-1}`.

    Parameters
    ----------
    problem : PSDSensing
    rank : int, r <= rank <= n
        Factor width r' (default r; overparameterised when larger).
    eta : float > 0
    lam : float > 0, optional
        Damping (default ``sigma_min(M*)``, known in a simulation; the theorem takes lambda
        of the order of sigma_min).
    alpha : float > 0
        Initialisation scale. The overparameterised directions grow during the first phase
        and then decay only slowly, so the error levels off at a floor that falls with
        alpha (the theorem asks for alpha small enough for the target accuracy): on
        n = 20, r = 2, r' = 4, m = 40 n r, lambda = sigma_min, alpha = 1e-6 levels off
        near 1e-9 at kappa = 10 and 1e-5 at kappa = 100, alpha = 1e-12 reaches the float64
        floor at both.
    iterations : int
    seed : int or torch.Generator
        Source of G.
    init : torch.Tensor, shape (n, rank), optional
        Starting point instead of alpha G.

    Returns
    -------
    Trajectory (``factor_distance`` is None)
    """
    return _run_psd(problem, "scaledgd-lambda", rank, eta, lam, alpha, iterations, seed, init,
                    stop_tol, diverge_tol)


def overparam_gd(problem: PSDSensing, rank: Optional[int] = None, eta: float = 0.5,
                 alpha: float = 1e-9, iterations: int = 1000, *, seed: Seed = 0, init=None,
                 stop_tol: float = 1e-14, diverge_tol: float = 1e3) -> Trajectory:
    r"""GD on the PSD factor from the same small random start:
    :math:`X \leftarrow X - (\eta/\sigma_1(M_\star))\nabla f(X)`. Parameters as
    :func:`scaled_gd_lambda`."""
    return _run_psd(problem, "overparam-gd", rank, eta, None, alpha, iterations, seed, init,
                    stop_tol, diverge_tol)


def run_algorithm(problem, algorithm: str, **kwargs) -> Trajectory:
    """Dispatch by name: one of :data:`ALGORITHMS`."""
    table = {"gd": gd, "scaledgd": scaled_gd, "scaledgd-lambda": scaled_gd_lambda,
             "overparam-gd": overparam_gd}
    if algorithm not in table:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
    return table[algorithm](problem, **kwargs)
