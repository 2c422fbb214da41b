r"""Low-rank estimation problems: a ground truth of rank r and condition number kappa, and the
measurements of the four problems of THEORY.md section 7 (ScaledGD entry).

Ground truth [paper code]. :math:`X_\star = U_\star \Sigma_\star V_\star^\top \in \mathbb R^{n_1\times n_2}`
with :math:`\Sigma_\star = \mathrm{diag}(\sigma)`, :math:`\sigma = \mathrm{linspace}(1, 1/\kappa, r)`
(so :math:`\sigma_1 = 1`, :math:`\sigma_r = 1/\kappa`), and :math:`U_\star, V_\star` the
orthonormalised columns of independent random sign matrices (the authors' MATLAB code). The
balanced factors are :math:`L_\star = U_\star\Sigma_\star^{1/2}`, :math:`R_\star = V_\star\Sigma_\star^{1/2}`.
(Several of the authors' scripts build :math:`V_\star` from the same seed matrix as
:math:`U_\star`, which makes :math:`X_\star` symmetric PSD; ``MC_stepsizes.m`` uses an independent
one, as here. ``psd=True`` asks for :math:`V_\star = U_\star` on purpose.)

Problems, each with the loss whose gradient the algorithms use, written through
:math:`\nabla_X f` at :math:`X = LR^\top` (then :math:`\nabla_L f = \nabla_X f\,R`,
:math:`\nabla_R f = (\nabla_X f)^\top L`):

* **Matrix sensing** (Gaussian design): :math:`y_k = \langle A_k, X_\star\rangle + \varepsilon_k`,
  :math:`k = 1..m`, entries of :math:`A_k` i.i.d. :math:`N(0, 1/m)`;
  :math:`f = \tfrac12\|\mathcal A(LR^\top) - y\|_2^2`, :math:`\nabla_X f = \mathcal A^*(\mathcal A(X) - y)`;
  spectral initialisation from :math:`\mathcal A^*(y)`. Paper's code: n = 200, r = 10, m = 5nr.
* **Matrix completion** (Bernoulli sampling with rate p):
  :math:`Y = \mathcal P_\Omega(X_\star + N)`; :math:`f = \tfrac1{2p}\|\mathcal P_\Omega(LR^\top) - Y\|_F^2`,
  :math:`\nabla_X f = p^{-1}(\mathcal P_\Omega(X) - Y)`; spectral initialisation from
  :math:`Y/p`. Paper's code: n = 1000, r = 10, p = 0.2 (its ScaledGD runs without the
  theorem's scaled projection, as here).
* **Robust PCA**: :math:`Y = X_\star + S_\star + N` with :math:`S_\star = \mathcal T_\alpha(G)`,
  G standard Gaussian; :math:`\mathcal T_\alpha` keeps the entries that are among the
  :math:`\lfloor\alpha n_2\rfloor` largest in magnitude of their row *and* among the
  :math:`\lfloor\alpha n_1\rfloor` largest of their column. Each iteration re-estimates
  :math:`S = \mathcal T_{\gamma\alpha}(Y - LR^\top)` (gamma = 2 in the code), then
  :math:`f = \tfrac12\|LR^\top + S - Y\|_F^2` at that S, :math:`\nabla_X f = X + S - Y`;
  spectral initialisation from :math:`Y - \mathcal T_\alpha(Y)`. Paper's code: n = 1000,
  r = 10, alpha = 0.1.
* **PSD sensing** (ScaledGD(lambda), Xu, Shen, Ma, Chi): :math:`M_\star = U_\star\Sigma_\star U_\star^\top`,
  :math:`y_k = \langle A_k, M_\star\rangle + \varepsilon_k` with the symmetrised design
  :math:`A_k = (G_k + G_k^\top)/2`, entries of :math:`G_k` i.i.d. :math:`N(0, 1/m)`
  (so :math:`E\|\mathcal A(M)\|^2 = \|M\|_F^2` for symmetric M); factor
  :math:`X \in \mathbb R^{n\times r'}`, :math:`r' \ge r`,
  :math:`f(X) = \tfrac14\|\mathcal A(XX^\top) - y\|_2^2`, :math:`\nabla f(X) = \mathcal A^*(\mathcal A(XX^\top) - y)\,X`.

Noise at a given SNR [paper code]: each measurement (sensing) or entry (completion, RPCA)
gets i.i.d. :math:`N(0, s^2)` noise with :math:`s = \|X_\star\|_F / (\sqrt{n_1 n_2}\,\mathrm{snr})`,
so a full noise matrix has :math:`\|N\|_F \approx \|X_\star\|_F/\mathrm{snr}`; ``snr`` is the
amplitude ratio (the code's 1e2, 1e3, 1e4 are 40, 60, 80 dB).

The sensing design (dense, Gram or matrix-free, by size) is
:class:`theory.lowrank.operators.GaussianSensingOperator`.

Every random draw comes from a seed (an int) or a ``torch.Generator``: the same seed gives
the same problem. Ground truth, masks and outliers are drawn on the generator's device (CPU
for an int seed) and moved to ``device``, so they are the same on every device; the sensing
design is drawn on ``device`` (a CUDA stream differs from the CPU one).

References:
    Tong, Ma, Chi, JMLR 22(150), 2021, arXiv:2005.08898 (and the authors' MATLAB code).
    Xu, Shen, Ma, Chi, ICML 2023, arXiv:2302.01186.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch

from .operators import (DEFAULT_DTYPE, GaussianSensingOperator, Seed, _check_dtype, _check_int,
                        _device, _generator, _rand, _randn)

__all__ = ["GroundTruth", "MatrixSensing", "MatrixCompletion", "RobustPCA", "PSDSensing",
           "ground_truth", "make_problem", "sparse_threshold", "PAPER_SIZES", "FAST_SIZES",
           "PROBLEMS"]

#: Sizes of the authors' code (Figure 2-4 scripts). ScaledGD(lambda): the paper's own sizes
#: were not available to us; the PSD defaults mirror matrix sensing.
PAPER_SIZES = {
    "sensing": {"n": 200, "r": 10, "oversampling": 5.0},
    "completion": {"n": 1000, "r": 10, "p": 0.2},
    "rpca": {"n": 1000, "r": 10, "alpha": 0.1},
    "psd-sensing": {"n": 200, "r": 10, "oversampling": 5.0},
}
#: Fast mode: the same sampling ratios (m / (n r), p, alpha) at sizes a CI core runs in seconds.
FAST_SIZES = {
    "sensing": {"n": 20, "r": 2, "oversampling": 5.0},
    "completion": {"n": 100, "r": 2, "p": 0.2},
    "rpca": {"n": 100, "r": 2, "alpha": 0.1},
    "psd-sensing": {"n": 20, "r": 2, "oversampling": 5.0},
}


# ----------------------------------------------------------------------------- checks
def _check_kappa(kappa) -> float:
    try:
        k = float(kappa)
    except (TypeError, ValueError):
        raise ValueError(f"kappa must be a number >= 1, got {kappa!r}") from None
    if not math.isfinite(k) or k < 1:
        raise ValueError(f"kappa must be a finite number >= 1, got {kappa!r}")
    return k


def _check_rank(r, n1, n2) -> int:
    r = _check_int(r, "rank r")
    if r > min(n1, n2):
        raise ValueError(f"rank r = {r} exceeds min(n1, n2) = {min(n1, n2)}")
    return r


def _check_snr(snr) -> Optional[float]:
    if snr is None:
        return None
    try:
        s = float(snr)
    except (TypeError, ValueError):
        raise ValueError(f"snr must be a positive number or None, got {snr!r}") from None
    if not (s > 0) or math.isnan(s):
        raise ValueError(f"snr must be a positive number or None, got {snr!r}")
    return s


def _check_prob(p, name, *, allow_zero=False) -> float:
    try:
        q = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {p!r}") from None
    if allow_zero:
        if not (0 <= q < 1):
            raise ValueError(f"{name} must lie in [0, 1), got {p!r}")
    elif not (0 < q <= 1):
        raise ValueError(f"{name} must lie in (0, 1], got {p!r}")
    return q


# ----------------------------------------------------------------------------- ground truth
@dataclass
class GroundTruth:
    r"""A rank-r matrix :math:`X_\star = U\,\mathrm{diag}(\sigma)\,V^\top`.

    Attributes
    ----------
    U : torch.Tensor, shape (n1, r)
        Orthonormal left factor.
    V : torch.Tensor, shape (n2, r)
        Orthonormal right factor (``V is U`` for a PSD truth).
    sigma : torch.Tensor, shape (r,)
        Singular values, ``linspace(1, 1/kappa, r)``.
    kappa : float
        Condition number ``sigma[0] / sigma[-1]``.
    """

    U: torch.Tensor
    V: torch.Tensor
    sigma: torch.Tensor
    kappa: float

    @property
    def n1(self) -> int:
        return self.U.shape[0]

    @property
    def n2(self) -> int:
        return self.V.shape[0]

    @property
    def r(self) -> int:
        return self.sigma.numel()

    @property
    def X(self) -> torch.Tensor:
        """The matrix, shape (n1, n2)."""
        return (self.U * self.sigma) @ self.V.T

    @property
    def L(self) -> torch.Tensor:
        r"""Balanced left factor :math:`U\Sigma^{1/2}`, shape (n1, r)."""
        return self.U * self.sigma.sqrt()

    @property
    def R(self) -> torch.Tensor:
        r"""Balanced right factor :math:`V\Sigma^{1/2}`, shape (n2, r)."""
        return self.V * self.sigma.sqrt()

    @property
    def fro(self) -> float:
        """Frobenius norm of X*."""
        return float(self.sigma.norm())

    @property
    def sigma_max(self) -> float:
        return float(self.sigma[0])

    @property
    def sigma_min(self) -> float:
        return float(self.sigma[-1])

    @property
    def psd(self) -> bool:
        return self.V is self.U

    def describe(self) -> dict:
        return {"n1": self.n1, "n2": self.n2, "r": self.r, "kappa": self.kappa,
                "psd": self.psd, "fro": self.fro}


def _orth_sign(n, r, g, device, dtype):
    s = torch.sign(_rand((n, r), g, device, dtype) - 0.5)
    s[s == 0] = 1.0
    q, _ = torch.linalg.qr(s)
    return q


def ground_truth(n1: int, n2: Optional[int] = None, r: int = 1, kappa: float = 1.0, *,
                 psd: bool = False, seed: Seed = 0, device=None,
                 dtype=DEFAULT_DTYPE) -> GroundTruth:
    r"""Rank-r ground truth with singular values ``linspace(1, 1/kappa, r)``.

    Parameters
    ----------
    n1, n2 : int
        Shape of X* (``n2`` defaults to ``n1``; a PSD truth needs ``n1 == n2``).
    r : int
        Rank, ``1 <= r <= min(n1, n2)``.
    kappa : float
        Condition number, ``>= 1``.
    psd : bool
        ``V = U`` (a PSD matrix :math:`U\Sigma U^\top`).
    seed : int or torch.Generator
        Source of the random sign matrices.
    device, dtype
        Where the tensors live (float64 by default).

    Returns
    -------
    GroundTruth
    """
    n1 = _check_int(n1, "n1")
    n2 = n1 if n2 is None else _check_int(n2, "n2")
    r = _check_rank(r, n1, n2)
    kappa = _check_kappa(kappa)
    dtype = _check_dtype(dtype)
    if psd and n1 != n2:
        raise ValueError(f"a PSD ground truth needs n1 == n2, got {n1} and {n2}")
    dev = _device(device)
    g = _generator(seed)
    U = _orth_sign(n1, r, g, dev, dtype)
    V = U if psd else _orth_sign(n2, r, g, dev, dtype)
    sigma = torch.linspace(1.0, 1.0 / kappa, r, dtype=dtype, device=dev)
    return GroundTruth(U, V, sigma, kappa)


def _noise_std(truth: GroundTruth, snr: Optional[float]) -> float:
    if snr is None:
        return 0.0
    return truth.fro / (math.sqrt(truth.n1 * truth.n2) * snr)


# ----------------------------------------------------------------------------- problems
class _Asymmetric:
    """Common interface of the problems solved with two factors L (n1, r), R (n2, r)."""

    kind = ""
    truth: GroundTruth

    def grad_matrix(self, X: torch.Tensor) -> torch.Tensor:
        """``grad_X f(X)`` at X = L R^T, shape (n1, n2)."""
        raise NotImplementedError

    def spectral_matrix(self) -> torch.Tensor:
        """The matrix whose top-r SVD is the spectral initialisation."""
        raise NotImplementedError

    def loss(self, L: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        """f(L, R) as a 0-d tensor (differentiable where the problem is smooth)."""
        raise NotImplementedError

    def gradients(self, L: torch.Tensor, R: torch.Tensor):
        """``(grad_L f, grad_R f)``, shapes (n1, r), (n2, r)."""
        Z = self.grad_matrix(L @ R.T)
        return Z @ R, Z.T @ L

    @property
    def device(self):
        return self.truth.U.device

    @property
    def dtype(self):
        return self.truth.U.dtype

    def describe(self) -> dict:
        return {"kind": self.kind, **self.truth.describe()}


@dataclass
class MatrixSensing(_Asymmetric):
    r"""Matrix sensing :math:`y = \mathcal A(X_\star) + \varepsilon`, loss :math:`\tfrac12\|\mathcal A(LR^\top)-y\|^2`."""

    truth: GroundTruth
    op: GaussianSensingOperator
    y: torch.Tensor
    noise_std: float = 0.0
    snr: Optional[float] = None
    kind: str = field(default="sensing", init=False)

    def grad_matrix(self, X):
        return self.op.normal(X, self.y)

    def spectral_matrix(self):
        return self.op.adjoint(self.y)

    def loss(self, L, R):
        res = self.op.forward(L @ R.T) - self.y
        return 0.5 * res.dot(res)

    def describe(self):
        return {**super().describe(), "m": self.op.m, "snr": self.snr,
                "noise_std": self.noise_std, "dense": self.op.dense, "gram": self.op.uses_gram}


@dataclass
class MatrixCompletion(_Asymmetric):
    r"""Matrix completion :math:`Y = \mathcal P_\Omega(X_\star + N)`, Bernoulli(p) mask;
    loss :math:`\tfrac1{2p}\|\mathcal P_\Omega(LR^\top) - Y\|_F^2`."""

    truth: GroundTruth
    p: float
    mask: torch.Tensor
    Y: torch.Tensor
    noise_std: float = 0.0
    snr: Optional[float] = None
    kind: str = field(default="completion", init=False)

    def grad_matrix(self, X):
        # the 1/p here is the paper code's step eta/p on P_Omega(X) - Y
        return (self.mask * X - self.Y) / self.p

    def spectral_matrix(self):
        return self.Y / self.p

    def loss(self, L, R):
        D = self.mask * (L @ R.T) - self.Y
        return 0.5 / self.p * D.pow(2).sum()

    def describe(self):
        return {**super().describe(), "p": self.p, "snr": self.snr, "noise_std": self.noise_std,
                "observed": int(self.mask.sum())}


def sparse_threshold(Z: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""The sparsification :math:`\mathcal T_\alpha(Z)` of robust PCA (ScaledGD paper, eq. for
    the sparse estimate): keep :math:`Z_{ij}` if it is among the :math:`\lfloor\alpha n_2\rfloor`
    largest entries of row i *and* among the :math:`\lfloor\alpha n_1\rfloor` largest of column
    j, both in magnitude; zero elsewhere.

    Parameters
    ----------
    Z : torch.Tensor, shape (n1, n2)
    alpha : float in [0, 1]

    Returns
    -------
    torch.Tensor, shape (n1, n2)
    """
    if Z.dim() != 2:
        raise ValueError(f"Z must be a matrix, got shape {tuple(Z.shape)}")
    a = float(alpha)
    if not (0 <= a <= 1):
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    n1, n2 = Z.shape
    k_row, k_col = int(math.floor(a * n2)), int(math.floor(a * n1))
    if k_row == 0 or k_col == 0:
        return torch.zeros_like(Z)
    A = Z.abs()
    row = torch.zeros_like(Z, dtype=torch.bool)
    row.scatter_(1, A.topk(k_row, dim=1).indices, True)
    col = torch.zeros_like(Z, dtype=torch.bool)
    col.scatter_(0, A.topk(k_col, dim=0).indices, True)
    return torch.where(row & col, Z, torch.zeros_like(Z))


@dataclass
class RobustPCA(_Asymmetric):
    r"""Robust PCA :math:`Y = X_\star + S_\star + N`; each gradient re-estimates
    :math:`S = \mathcal T_{\gamma\alpha}(Y - LR^\top)`."""

    truth: GroundTruth
    alpha: float
    S_star: torch.Tensor
    Y: torch.Tensor
    gamma: float = 2.0
    noise_std: float = 0.0
    snr: Optional[float] = None
    kind: str = field(default="rpca", init=False)

    def grad_matrix(self, X):
        S = sparse_threshold(self.Y - X, self.gamma * self.alpha)
        return X + S - self.Y

    def spectral_matrix(self):
        return self.Y - sparse_threshold(self.Y, self.alpha)

    def loss(self, L, R):
        X = L @ R.T
        S = sparse_threshold((self.Y - X).detach(), self.gamma * self.alpha)
        return 0.5 * (X + S - self.Y).pow(2).sum()

    def describe(self):
        return {**super().describe(), "alpha": self.alpha, "gamma": self.gamma, "snr": self.snr,
                "noise_std": self.noise_std, "outliers": int((self.S_star != 0).sum())}


@dataclass
class PSDSensing:
    r"""PSD matrix sensing for ScaledGD(lambda): :math:`y = \mathcal A(M_\star) + \varepsilon`,
    :math:`M_\star = U\Sigma U^\top`, loss :math:`\tfrac14\|\mathcal A(XX^\top) - y\|^2`."""

    truth: GroundTruth
    op: GaussianSensingOperator
    y: torch.Tensor
    noise_std: float = 0.0
    snr: Optional[float] = None
    kind: str = field(default="psd-sensing", init=False)

    def gradient(self, X: torch.Tensor) -> torch.Tensor:
        r""":math:`\nabla f(X) = \mathcal A^*(\mathcal A(XX^\top) - y)X`, X shape (n, r') -> (n, r')."""
        return self.op.normal(X @ X.T, self.y) @ X

    def loss(self, X: torch.Tensor) -> torch.Tensor:
        res = self.op.forward(X @ X.T) - self.y
        return 0.25 * res.dot(res)

    @property
    def device(self):
        return self.truth.U.device

    @property
    def dtype(self):
        return self.truth.U.dtype

    def describe(self):
        return {"kind": self.kind, **self.truth.describe(), "m": self.op.m, "snr": self.snr,
                "noise_std": self.noise_std, "dense": self.op.dense}


PROBLEMS = ("sensing", "completion", "rpca", "psd-sensing")


def make_problem(kind: str, *, n: Optional[int] = None, r: Optional[int] = None,
                 kappa: float = 1.0, snr: Optional[float] = None, fast: bool = False,
                 m: Optional[int] = None, oversampling: Optional[float] = None,
                 p: Optional[float] = None, alpha: Optional[float] = None, gamma: float = 2.0,
                 outlier_scale: float = 1.0, dense: Optional[bool] = None,
                 gram: Optional[bool] = None, seed: Seed = 0, device=None,
                 dtype=DEFAULT_DTYPE):
    r"""Build one of :data:`PROBLEMS` with square n x n ground truth of rank r.

    Sizes not given come from :data:`PAPER_SIZES` (or :data:`FAST_SIZES` with ``fast``).

    Parameters
    ----------
    kind : {"sensing", "completion", "rpca", "psd-sensing"}
    n, r : int
        Matrix size and rank (``r <= n``).
    kappa : float
        Condition number (``>= 1``).
    snr : float or None
        Noise at amplitude SNR ``snr`` (see module docstring); None: noiseless.
    fast : bool
        Fast-mode default sizes.
    m, oversampling : int, float
        Sensing: number of measurements, or ``m = round(oversampling * n * r)``.
    p : float in (0, 1]
        Completion: sampling rate.
    alpha : float in [0, 1)
        Robust PCA: outlier fraction per row/column; ``gamma``: the iterations' threshold
        ``gamma * alpha``; ``outlier_scale``: standard deviation of the outliers before
        thresholding.
    dense, gram : bool or None
        Sensing design kept dense / matrix-free / by size; normal operator through the
        cached Gram matrix / not / when m > n^2 and it fits.
    seed : int or torch.Generator
        One seed for the whole problem (truth, then measurements, then noise).
    device, dtype

    Returns
    -------
    MatrixSensing, MatrixCompletion, RobustPCA or PSDSensing
    """
    if kind not in PROBLEMS:
        raise ValueError(f"unknown problem {kind!r}; choose from {', '.join(PROBLEMS)}")
    defaults = (FAST_SIZES if fast else PAPER_SIZES)[kind]
    n = _check_int(defaults["n"] if n is None else n, "n")
    r = _check_rank(defaults["r"] if r is None else r, n, n)
    kappa = _check_kappa(kappa)
    snr = _check_snr(snr)
    dtype = _check_dtype(dtype)
    dev = _device(device)
    g = _generator(seed)
    truth = ground_truth(n, n, r, kappa, psd=(kind == "psd-sensing"), seed=g, device=dev,
                         dtype=dtype)
    s = _noise_std(truth, snr)
    if kind in ("sensing", "psd-sensing"):
        if m is None:
            ov = defaults["oversampling"] if oversampling is None else oversampling
            try:
                ov = float(ov)
            except (TypeError, ValueError):
                raise ValueError(f"oversampling must be a positive number, got {ov!r}") from None
            if not (ov > 0) or not math.isfinite(ov):
                raise ValueError(f"oversampling must be a positive number, got {ov!r}")
            m = max(1, int(round(ov * n * r)))
        m = _check_int(m, "number of measurements m")
        op = GaussianSensingOperator(n, n, m, seed=g, symmetric=(kind == "psd-sensing"),
                                     dense=dense, gram=gram, device=dev, dtype=dtype)
        y = op.forward(truth.X)
        if s > 0:
            y = y + s * _randn((m,), g, dev, dtype)
        cls = MatrixSensing if kind == "sensing" else PSDSensing
        return cls(truth, op, y, noise_std=s, snr=snr)
    if kind == "completion":
        p = _check_prob(defaults["p"] if p is None else p, "sampling rate p")
        mask = (_rand((n, n), g, dev, dtype) < p).to(dtype)
        noise = s * _randn((n, n), g, dev, dtype) if s > 0 else 0.0
        return MatrixCompletion(truth, p, mask, mask * (truth.X + noise), noise_std=s, snr=snr)
    # rpca
    a = _check_prob(defaults["alpha"] if alpha is None else alpha, "outlier fraction alpha",
                    allow_zero=True)
    try:
        gamma = float(gamma)
        outlier_scale = float(outlier_scale)
    except (TypeError, ValueError):
        raise ValueError("gamma and outlier_scale must be numbers") from None
    if not (gamma >= 1) or gamma * a > 1:
        raise ValueError(f"gamma must be >= 1 with gamma * alpha <= 1, got gamma = {gamma}")
    if not (outlier_scale > 0):
        raise ValueError(f"outlier_scale must be positive, got {outlier_scale}")
    S_star = sparse_threshold(outlier_scale * _randn((n, n), g, dev, dtype), a)
    noise = s * _randn((n, n), g, dev, dtype) if s > 0 else 0.0
    return RobustPCA(truth, a, S_star, truth.X + S_star + noise, gamma=gamma, noise_std=s,
                     snr=snr)
