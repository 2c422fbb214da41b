r"""Measurement models :math:`p(y \mid x)` for posterior sampling: THEORY.md section 6.

Each likelihood holds its observation ``y`` and gives the log-likelihood
:math:`\ell(x) = \log p(y \mid x)` and its gradient, batched over the first axis
(``x`` of shape (n, d), results (n,) and (n, d)), in float64 torch on the likelihood's device.

* :class:`LinearGaussian`: :math:`y = A x + \sigma\,\varepsilon`,
  :math:`\ell(x) = -\|y - Ax\|^2/(2\sigma^2) - \tfrac m2\log(2\pi\sigma^2)`,
  :math:`\nabla\ell = A^\top(y - Ax)/\sigma^2`.
* :class:`PhaseRetrieval`: :math:`y = |A x| + \sigma\,\varepsilon` (entrywise modulus),
  :math:`\ell(x) = -\|y - |Ax|\|^2/(2\sigma^2) + c`,
  :math:`\nabla\ell = A^\top\big(\mathrm{sign}(Ax)\odot(y - |Ax|)\big)/\sigma^2`
  (the sign is taken as 0 at 0, a subgradient).
* :class:`LogisticQuantisation` (1-bit): :math:`P(y_i = +1 \mid x) = \mathrm{sigmoid}((Ax)_i/\lambda)`,
  :math:`\ell(x) = \sum_i \log\mathrm{sigmoid}(y_i (Ax)_i/\lambda)`,
  :math:`\nabla\ell = A^\top\big(y\odot\mathrm{sigmoid}(-y\odot Ax/\lambda)\big)/\lambda`.

A linear-Gaussian likelihood with a full noise covariance is read from a file by
:func:`load_likelihood` (JSON or NPZ: ``operator`` (m, d), ``y`` (m,), and ``noise_covariance``
(m, m) or ``sigma``); it is returned whitened, :math:`N(y; Ax, \Sigma) \propto
N(L^{-1}y; L^{-1}Ax, I)` as a function of x (:math:`\Sigma = LL^\top`, Cholesky), so the
posterior, :math:`\pi_\eta` and every sampler see the same likelihood as with the covariance.

Operators (:func:`make_operator`): ``identity``, ``mask`` (inpainting: the rows of the
identity kept by a 0/1 mask) and ``random`` (an m x d matrix with prescribed singular values
log-spaced from 1 to 1/cond between random orthogonal factors: condition number ``cond``).

Each likelihood also defines the DPS loss (THEORY.md section 7), a squared "residual norm":
:math:`\|y - A x\|^2` (Gaussian), :math:`\|y - |Ax|\|^2` (phase retrieval), and for 1-bit
quantisation :math:`\sum_i \log(1 + e^{-y_i (Ax)_i/\lambda})` (the loss of the reference code).

References:
    Xu & Chi, "Provably robust score-based diffusion posterior sampling for plug-and-play
    image reconstruction", arXiv:2403.17042 (DPnP; the three measurement models, official
    code github.com/x1xu/diffusion-plug-and-play).
    Chung, Kim, Mccann, Klasky, Ye, "Diffusion posterior sampling for general noisy inverse
    problems", ICLR 2023 (DPS).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from scipy.linalg import solve_triangular

from ..checks import check_memory, integer, number, numbers, positive
from ..priors import _as_tensor

__all__ = ["Likelihood", "LinearGaussian", "PhaseRetrieval", "LogisticQuantisation",
           "make_operator", "make_likelihood", "load_likelihood", "LIKELIHOODS", "OPERATORS",
           "SCALE_MIN", "Y_MAX", "noise_scale", "observation"]

DTYPE = torch.float64
LOG_2PI = math.log(2 * math.pi)
OPERATORS = ("identity", "mask", "random")
# The supported range: a noise scale (sigma, lambda) below SCALE_MIN makes the likelihood a
# point mass that neither a grid nor a Langevin step can resolve (sigma = 1e-6 already asks
# a 1-D grid for 2e8 nodes), and observations beyond Y_MAX put the posterior far outside the
# prior's bulk, where every engine here loses it (squared residuals overflow near 1e154).
SCALE_MIN = 1e-6
Y_MAX = 1e6


def _tensor(v, name, device):
    return _as_tensor(v, name, device, DTYPE)


def noise_scale(name: str, v) -> float:
    """A likelihood's noise scale (``sigma`` or ``lambda``): a finite number >= SCALE_MIN."""
    v = positive(name, v)
    if v < SCALE_MIN:
        raise ValueError(f"{name} = {v:g} is below {SCALE_MIN:g}: a likelihood this sharp is "
                         "a point mass that no grid or Langevin step here resolves")
    return v


def observation(v) -> list:
    """Observation values: finite numbers with ``|y| <= Y_MAX``."""
    return numbers("y", v, lo=-Y_MAX, hi=Y_MAX)


def make_operator(kind: str, d: int, *, m: Optional[int] = None, cond: float = 10.0,
                  keep=None, keep_fraction: float = 0.5, generator: Optional[torch.Generator] = None,
                  device=None) -> torch.Tensor:
    r"""A measurement matrix A of shape (m, d), float64.

    Parameters
    ----------
    kind : {"identity", "mask", "random"}
        ``identity``: :math:`A = I_d`. ``mask``: the rows of :math:`I_d` whose index is in
        ``keep`` (a boolean vector of length d or a list of indices); without ``keep``, the first
        ``ceil(keep_fraction * d)`` coordinates. ``random``: :math:`A = U\,\mathrm{diag}(s)\,V^\top`
        with Haar-random orthogonal U (m x r), V (d x r), r = min(m, d), and s log-spaced from 1
        down to 1/cond (so the condition number of A is exactly ``cond``).
    m : int, optional
        Number of measurements of the random operator (default d).
    generator : torch.Generator, optional
        Randomness of the random operator (CPU generator; the matrix is then moved).
    """
    d = integer("d", d, lo=1)
    if kind in ("identity", "mask"):
        check_memory(8 * d * d, f"the {kind} operator in d = {d} (a dense d x d matrix)")
    if kind == "identity":
        return torch.eye(d, dtype=DTYPE, device=device)
    if kind == "mask":
        if keep is None:
            keep_fraction = number("keep_fraction", keep_fraction, positive=True, hi=1)
            idx = list(range(max(1, math.ceil(keep_fraction * d))))
        else:
            k = torch.as_tensor(keep)
            if k.dtype == torch.bool:
                if k.numel() != d:
                    raise ValueError(f"a boolean mask needs d = {d} entries, got {k.numel()}")
                idx = [i for i, b in enumerate(k.tolist()) if b]
            else:
                idx = sorted(set(int(i) for i in k.reshape(-1).tolist()))
        if not idx or min(idx) < 0 or max(idx) >= d:
            raise ValueError(f"mask must keep between 1 and d = {d} valid coordinates")
        return torch.eye(d, dtype=DTYPE, device=device)[idx]
    if kind == "random":
        m = d if m is None else integer("m", m, lo=1)
        cond = number("cond", cond, lo=1)
        check_memory(16 * (m * m + d * d + m * d), f"the random {m} x {d} operator")
        r = min(m, d)
        gu = torch.randn(m, m, generator=generator, dtype=DTYPE)
        gv = torch.randn(d, d, generator=generator, dtype=DTYPE)
        U, _ = torch.linalg.qr(gu)
        V, _ = torch.linalg.qr(gv)
        s = torch.logspace(0, -math.log10(cond), r, dtype=DTYPE) if r > 1 else torch.ones(1, dtype=DTYPE)
        return ((U[:, :r] * s) @ V[:, :r].T).to(device)
    raise ValueError(f"unknown operator {kind!r}; choose from {', '.join(OPERATORS)}")


class Likelihood:
    r"""Interface: :math:`\ell(x) = \log p(y \mid x)` and its gradient for fixed ``y``.

    Attributes: ``A`` (m, d), ``y`` (m,), ``dim`` = d, ``device``, ``name``.
    """

    name = "likelihood"
    linear_gaussian = False

    def __init__(self, A, y, *, device=None):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        A = _tensor(A, "A", self.device)
        if A.ndim == 1:
            A = A[None, :]
        if A.ndim != 2:
            raise ValueError(f"A must be a matrix (m, d), got shape {tuple(A.shape)}")
        y = _tensor(y, "y", self.device).reshape(-1)
        if y.numel() and float(y.abs().max()) > Y_MAX:
            raise ValueError(f"y must lie in [-{Y_MAX:g}, {Y_MAX:g}], got max |y| = "
                             f"{float(y.abs().max()):g}")
        if y.shape[0] != A.shape[0]:
            raise ValueError(f"y has {y.shape[0]} entries but A has {A.shape[0]} rows")
        self.A, self.y = A, y
        self.dim = A.shape[1]

    # -- to be provided by subclasses ---------------------------------------------------
    def log_lik(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def dps_loss(self, x: torch.Tensor) -> torch.Tensor:
        """The DPS residual loss (module docstring), shape (n,)."""
        raise NotImplementedError

    def dps_loss_grad(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def simulate(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw observations ``y`` for each row of ``x`` (shape (n, m))."""
        raise NotImplementedError

    def step_scale(self) -> float:
        r"""A length^2 below which Langevin steps on :math:`\ell` are stable:
        1 / (Lipschitz constant of :math:`\nabla\ell`) (or its smooth-part analogue)."""
        raise NotImplementedError

    def describe(self) -> dict:
        raise NotImplementedError

    def kinks_1d(self) -> list:
        r"""In d = 1, the points where :math:`\ell` is not smooth (none for smooth models);
        the grid engines put them on nodes."""
        return []

    def with_y(self, y) -> "Likelihood":
        """The same measurement model with another observation."""
        raise NotImplementedError

    # -- shared helpers -------------------------------------------------------------------
    def _prep(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=DTYPE, device=self.device)
        if x.ndim == 1 and self.dim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected points of shape (n, {self.dim}), got {tuple(x.shape)}")
        return x

    def _Ax(self, x):
        return x @ self.A.T

    @property
    def op_norm_sq(self) -> float:
        return float(torch.linalg.matrix_norm(self.A, ord=2) ** 2)

    @property
    def diagonal(self) -> bool:
        """True when every row of A is a scaled coordinate vector on distinct coordinates
        (identity, masks): the likelihood then factorises over coordinates."""
        nz = (self.A != 0)
        if (nz.sum(1) != 1).any():
            return False
        cols = nz.float().argmax(1)
        return len(set(cols.tolist())) == cols.numel()


class LinearGaussian(Likelihood):
    r""":math:`y = A x + \sigma\varepsilon`, :math:`\varepsilon \sim N(0, I_m)` (module docstring)."""

    name = "gaussian"
    linear_gaussian = True

    def __init__(self, A, y, sigma, *, device=None):
        super().__init__(A, y, device=device)
        self.sigma = noise_scale("sigma", sigma)

    def log_lik(self, x):
        x = self._prep(x)
        r = self.y - self._Ax(x)
        m = self.y.shape[0]
        return -0.5 * (r * r).sum(1) / self.sigma ** 2 - 0.5 * m * (LOG_2PI + 2 * math.log(self.sigma))

    def grad(self, x):
        x = self._prep(x)
        return (self.y - self._Ax(x)) @ self.A / self.sigma ** 2

    def dps_loss(self, x):
        x = self._prep(x)
        r = self.y - self._Ax(x)
        return (r * r).sum(1)

    def dps_loss_grad(self, x):
        x = self._prep(x)
        return -2 * (self.y - self._Ax(x)) @ self.A

    def simulate(self, x, generator=None):
        x = self._prep(x)
        noise = torch.randn(x.shape[0], self.y.shape[0], generator=generator, dtype=DTYPE,
                            device=self.device)
        return self._Ax(x) + self.sigma * noise

    def step_scale(self):
        return self.sigma ** 2 / max(self.op_norm_sq, 1e-300)

    def with_y(self, y):
        return LinearGaussian(self.A, y, self.sigma, device=self.device)

    def describe(self):
        return {"likelihood": self.name, "sigma": self.sigma, "m": int(self.A.shape[0]),
                "d": self.dim}


class PhaseRetrieval(Likelihood):
    r""":math:`y = |A x| + \sigma\varepsilon` (module docstring)."""

    name = "phase"

    def __init__(self, A, y, sigma, *, device=None):
        super().__init__(A, y, device=device)
        self.sigma = noise_scale("sigma", sigma)

    def log_lik(self, x):
        x = self._prep(x)
        r = self.y - self._Ax(x).abs()
        m = self.y.shape[0]
        return -0.5 * (r * r).sum(1) / self.sigma ** 2 - 0.5 * m * (LOG_2PI + 2 * math.log(self.sigma))

    def grad(self, x):
        x = self._prep(x)
        ax = self._Ax(x)
        return (torch.sign(ax) * (self.y - ax.abs())) @ self.A / self.sigma ** 2

    def dps_loss(self, x):
        x = self._prep(x)
        r = self.y - self._Ax(x).abs()
        return (r * r).sum(1)

    def dps_loss_grad(self, x):
        return -2 * self.sigma ** 2 * self.grad(x)

    def simulate(self, x, generator=None):
        x = self._prep(x)
        noise = torch.randn(x.shape[0], self.y.shape[0], generator=generator, dtype=DTYPE,
                            device=self.device)
        return self._Ax(x).abs() + self.sigma * noise

    def step_scale(self):
        return self.sigma ** 2 / max(self.op_norm_sq, 1e-300)

    def kinks_1d(self):
        """|a x| has its kink at x = 0 (for every row a != 0 of A)."""
        return [0.0] if self.dim == 1 and bool((self.A != 0).any()) else []

    def with_y(self, y):
        return PhaseRetrieval(self.A, y, self.sigma, device=self.device)

    def describe(self):
        return {"likelihood": self.name, "sigma": self.sigma, "m": int(self.A.shape[0]),
                "d": self.dim}


class LogisticQuantisation(Likelihood):
    r"""1-bit measurements :math:`P(y_i = +1 \mid x) = \mathrm{sigmoid}((Ax)_i/\lambda)`,
    ``y`` in {-1, +1} (module docstring)."""

    name = "logistic"

    def __init__(self, A, y, lam, *, device=None):
        super().__init__(A, y, device=device)
        if not torch.all((self.y == 1) | (self.y == -1)):
            raise ValueError("1-bit observations y must be +1 or -1")
        self.lam = noise_scale("lambda", lam)

    def log_lik(self, x):
        x = self._prep(x)
        return F.logsigmoid(self.y * self._Ax(x) / self.lam).sum(1)

    def grad(self, x):
        x = self._prep(x)
        u = self.y * self._Ax(x) / self.lam
        return (self.y * torch.sigmoid(-u) / self.lam) @ self.A

    def dps_loss(self, x):
        return -self.log_lik(x)

    def dps_loss_grad(self, x):
        return -self.grad(x)

    def simulate(self, x, generator=None):
        x = self._prep(x)
        p = torch.sigmoid(self._Ax(x) / self.lam)
        u = torch.rand(p.shape, generator=generator, dtype=DTYPE, device=self.device)
        return torch.where(u < p, 1.0, -1.0).to(DTYPE)

    def step_scale(self):
        # |d^2/du^2 log sigmoid(u)| <= 1/4
        return 4 * self.lam ** 2 / max(self.op_norm_sq, 1e-300)

    def with_y(self, y):
        return LogisticQuantisation(self.A, y, self.lam, device=self.device)

    def describe(self):
        return {"likelihood": self.name, "lambda": self.lam, "m": int(self.A.shape[0]),
                "d": self.dim}


LIKELIHOODS = {"gaussian": LinearGaussian, "phase": PhaseRetrieval,
               "logistic": LogisticQuantisation}


def make_likelihood(name: str, A, y, *, sigma: float = 0.5, lam: float = 0.4,
                    device=None) -> Likelihood:
    """Build a likelihood by name: ``gaussian`` (uses sigma), ``phase`` (sigma),
    ``logistic`` (lam)."""
    if name == "gaussian":
        return LinearGaussian(A, y, sigma, device=device)
    if name == "phase":
        return PhaseRetrieval(A, y, sigma, device=device)
    if name == "logistic":
        return LogisticQuantisation(A, y, lam, device=device)
    raise ValueError(f"unknown likelihood {name!r}; choose from {', '.join(LIKELIHOODS)}")


_LIKELIHOOD_FIELDS = ("operator", "y", "noise_covariance", "sigma")


def _read_likelihood_file(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"likelihood file {path}: no such file")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"likelihood file {path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"likelihood file {path}: the JSON must be an object with named "
                             "fields")
        return data
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError) as exc:
            raise ValueError(f"likelihood file {path}: not a readable NPZ archive ({exc})") \
                from None
    raise ValueError(f"likelihood file {path}: unknown format {path.suffix!r} (use .json or "
                     ".npz)")


def load_likelihood(path, *, device=None) -> LinearGaussian:
    r"""A linear-Gaussian likelihood :math:`y = Ax + \varepsilon`,
    :math:`\varepsilon \sim N(0, \Sigma)`, from a JSON or NPZ file.

    Fields: ``operator`` (m, d) (a single row may be given as a vector), ``y`` (m,), and
    either ``noise_covariance`` (m, m, symmetric positive definite) or ``sigma`` (a positive
    scalar: :math:`\Sigma = \sigma^2 I`). Returned whitened (module docstring): a
    :class:`LinearGaussian` with operator :math:`L^{-1}A`, observation :math:`L^{-1}y` and
    :math:`\sigma = 1` (or the file's operator, y and sigma when ``sigma`` is given). Raises a
    one-line ``ValueError`` naming the file and the field on any problem.
    """
    path = Path(path)
    where = f"likelihood file {path}"
    data = _read_likelihood_file(path)
    unknown = sorted(set(data) - set(_LIKELIHOOD_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (fields: "
                         f"{', '.join(_LIKELIHOOD_FIELDS)})")
    for key in ("operator", "y"):
        if key not in data:
            raise ValueError(f"{where}: missing field {key!r}")
    if ("noise_covariance" in data) == ("sigma" in data):
        raise ValueError(f"{where}: give exactly one of 'noise_covariance' (m x m) and 'sigma'")

    def arr(key):
        try:
            a = np.asarray(data[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: field {key!r} must be numeric") from None
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{where}: field {key!r} contains NaN or infinite values")
        return a

    A, y = arr("operator"), arr("y").reshape(-1)
    if A.ndim == 1:
        A = A[None, :]
    if A.ndim != 2:
        raise ValueError(f"{where}: 'operator' must be a matrix (m, d), got shape {A.shape}")
    m = A.shape[0]
    if y.size != m:
        raise ValueError(f"{where}: 'y' has {y.size} entries but 'operator' has {m} rows")
    if "sigma" in data:
        sigma = np.asarray(data["sigma"], dtype=np.float64)
        if sigma.size != 1 or not (float(sigma) > 0 and math.isfinite(float(sigma))):
            raise ValueError(f"{where}: 'sigma' must be a positive number")
        return LinearGaussian(A, y, float(sigma), device=device)
    S = arr("noise_covariance")
    if S.shape != (m, m):
        raise ValueError(f"{where}: 'noise_covariance' must have shape ({m}, {m}), got {S.shape}")
    if not np.allclose(S, S.T, rtol=1e-10, atol=1e-12 * float(np.abs(S).max() or 1)):
        raise ValueError(f"{where}: 'noise_covariance' is not symmetric")
    try:
        L = np.linalg.cholesky(0.5 * (S + S.T))
    except np.linalg.LinAlgError:
        raise ValueError(f"{where}: 'noise_covariance' is not positive definite") from None
    return LinearGaussian(solve_triangular(L, A, lower=True), solve_triangular(L, y, lower=True),
                          1.0, device=device)
