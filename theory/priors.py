r"""Priors with closed-form scores: THEORY.md section 4.

Every prior here is closed under the forward process: the law of
:math:`X_t = \sqrt{\bar\alpha} X_0 + \sqrt{1-\bar\alpha}\,\varepsilon` is again a prior of
the same family, returned by :meth:`Prior.marginal`. For a Gaussian mixture
:math:`\sum_k \pi_k N(\mu_k, \Sigma_k)`,

.. math::
    q_{\bar\alpha} = \sum_k \pi_k N(\sqrt{\bar\alpha}\mu_k,\; \bar\alpha\Sigma_k + (1-\bar\alpha) I),

and with :math:`C_k, m_k` those parameters and responsibilities
:math:`w_k(x) \propto \pi_k N(x; m_k, C_k)`,

.. math::
    s(x) = \sum_k w_k C_k^{-1}(m_k - x), \qquad
    \nabla s(x) = \sum_k w_k\big[-C_k^{-1} + C_k^{-1}(m_k-x)(m_k-x)^\top C_k^{-1}\big] - s s^\top,

    E[X_0 \mid X_t = x] = \big(x + (1-\bar\alpha)\, s(x)\big) / \sqrt{\bar\alpha} \quad\text{(Tweedie)}.

All tensors are torch, batched over the first axis, float64 unless told otherwise, on the
prior's device. Bad parameters raise :class:`ValueError` with a message.

Families: :class:`GaussianMixture` (full covariances, possibly singular), :class:`Gaussian`,
:class:`IsotropicMixture` (covariances v_k I, stored as K numbers),
:class:`ProductPrior` (independent 1-D mixtures per coordinate) and
:class:`SubspaceMixture` (a k-dimensional prior embedded in R^d, Gaussian off the subspace).
"""
from __future__ import annotations

import math
import threading
from typing import Optional

import numpy as np

from ._lazy import torch
from .checks import check_memory, integer

__all__ = ["Prior", "GaussianMixture", "Gaussian", "IsotropicMixture", "ProductPrior",
           "SubspaceMixture", "make_prior", "PRESETS", "preset_memory"]

LOG_2PI = math.log(2 * math.pi)


def __getattr__(name):
    # DEFAULT_DTYPE (torch.float64) is read lazily so that importing this module does not
    # import torch; a ``dtype=None`` argument below means this default
    if name == "DEFAULT_DTYPE":
        return torch.float64
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _resolve_dtype(dtype):
    return torch.float64 if dtype is None else dtype


def _as_tensor(x, name, device, dtype):
    try:
        t = torch.as_tensor(x, dtype=dtype, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _check_weights(w: torch.Tensor, name="weights"):
    if (w < 0).any():
        raise ValueError(f"{name} must be non-negative")
    total = w.sum(-1)
    if not torch.allclose(total, torch.ones_like(total), atol=1e-9, rtol=0):
        raise ValueError(f"{name} must sum to 1 (got {total.flatten()[:3].tolist()})")


def _numpy_parameters(device, dtype, **arrays):
    """The named parameters as float64 numpy arrays (checked finite, in the order given) when
    the prior can keep them in numpy until a tensor is first read: the CPU (``device`` None or
    ``"cpu"``), the default dtype, and every array a float64 numpy array (as the presets and
    the prior files give them). None otherwise: the caller builds tensors at once."""
    if not (device is None or (isinstance(device, str) and device == "cpu")) or dtype is not None:
        return None
    if not all(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in arrays.values()):
        return None
    for name, v in arrays.items():
        if not np.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    return list(arrays.values())


def _check_weights_numpy(w: np.ndarray, name="weights"):
    """:func:`_check_weights` on a numpy array (the same test: ``allclose`` with
    ``|total - 1| <= 1e-9``)."""
    if (w < 0).any():
        raise ValueError(f"{name} must be non-negative")
    total = w.sum(-1)
    if not np.allclose(total, np.ones_like(total), atol=1e-9, rtol=0):
        raise ValueError(f"{name} must sum to 1 (got {total.flatten()[:3].tolist()})")


def _check_abar(abar):
    abar = float(abar)
    if not (0 < abar <= 1):
        raise ValueError(f"alpha_bar must lie in (0, 1], got {abar}")
    return abar


class Prior:
    """Interface shared by all priors. Subclasses implement the abstract methods.

    ``device`` and ``dtype`` are read like attributes (and can be set); a prior that keeps
    its parameters in numpy until a tensor is read (the product presets) resolves them, to the
    CPU and float64, when they are first read, so that the numpy-only exact engines never
    import torch."""

    dim: int
    _device = None      # None: the CPU
    _dtype = None       # None: float64

    @property
    def device(self) -> "torch.device":
        if self._device is None:
            self._device = torch.device("cpu")
        return self._device

    @device.setter
    def device(self, value):
        self._device = value

    @property
    def dtype(self) -> "torch.dtype":
        if self._dtype is None:
            self._dtype = torch.float64
        return self._dtype

    @dtype.setter
    def dtype(self, value):
        self._dtype = value

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` independent draws, shape (n, dim)."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log density at ``x`` of shape (n, dim); returns shape (n,)."""
        raise NotImplementedError

    def score(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\nabla \log p(x)`, shape (n, dim)."""
        raise NotImplementedError

    def score_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\nabla^2 \log p(x)`, shape (n, dim, dim)."""
        raise NotImplementedError

    def score_jacobian_vector(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        r""":math:`\nabla^2 \log p(x)\, v` row by row, shape (n, dim) (the Hessian is symmetric,
        so this is also the vector-Jacobian product of the score). Default: through the dense
        :meth:`score_jacobian`; families override it without forming (n, d, d) arrays."""
        x = self._prep(x)
        return torch.einsum("nij,nj->ni", self.score_jacobian(x), self._prep(v))

    def marginal(self, alpha_bar: float) -> "Prior":
        r"""Law of :math:`\sqrt{\bar\alpha}X_0 + \sqrt{1-\bar\alpha}\varepsilon` (same family)."""
        raise NotImplementedError

    def denoise(self, x: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        r"""Tweedie denoiser :math:`E[X_0 \mid X_t = x]` at noise level ``alpha_bar``."""
        abar = _check_abar(alpha_bar)
        x = self._prep(x)
        return (x + (1 - abar) * self.marginal(abar).score(x)) / math.sqrt(abar)

    def describe(self) -> dict:
        raise NotImplementedError

    def _parameters(self, device, dtype, **arrays):
        """Set the device and dtype, and return the named parameter arrays as checked
        tensors (numeric, finite) on them, in the order given."""
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype = _resolve_dtype(dtype)
        return [_as_tensor(v, name, self.device, dtype) for name, v in arrays.items()]

    def _prep(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        if x.ndim == 1 and self.dim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected points of shape (n, {self.dim}), got {tuple(x.shape)}")
        return x


def _stacked_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for stacks of small matrices. On the CPU without autograd through numpy's
    stacked matmul, which runs these shapes 1.5-3x faster than torch's ``bmm``."""
    if a.device.type == "cpu" and not (a.requires_grad or b.requires_grad):
        return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))
    return a @ b


_WORKSPACE = threading.local()


def _fused_workspace(B: int, K: int, d: int):
    """Scratch arrays of the fused mixture score for blocks of B rows (the (B, K d + K) GEMM
    result and five small ones), kept per thread for the last shape asked: allocating them
    afresh on each call cost about 520 page faults (2 MB) per call at K = 8, d = 64, some ms of
    system time on this machine. Per thread, so that concurrent calls never share them."""
    key = (B, K, d)                  # B is the fixed block size: any n reuses the same arrays
    ws = getattr(_WORKSPACE, "fused", None)
    if ws is None or ws[0] != key:
        ws = (key, (np.empty((B, K * d + K)), np.empty((B, d)), np.empty((B, K)),
                    np.empty((B, K)), np.empty((B, 1)), np.empty((B, d))))
        _WORKSPACE.fused = ws
    return ws[1]


def _on_numpy(*ts) -> bool:
    """True if the tensors can be read as numpy arrays (CPU, no autograd)."""
    return all(t.device.type == "cpu" and not t.requires_grad for t in ts)


def _row_quad(xP: torch.Tensor, xc: torch.Tensor) -> torch.Tensor:
    r""":math:`q_{bk} = \sum_j xP_{bkj}\, xc_{bj}`, (b, K) from (b, K, d) and (b, d). On the CPU
    without autograd through ``numpy.einsum`` (about twice numpy's stacked matvec)."""
    if _on_numpy(xP, xc):
        return torch.from_numpy(np.einsum("bkd,bd->bk", xP.numpy(), xc.numpy()))
    return (xP @ xc.unsqueeze(2)).squeeze(2)


def _row_mix(r: torch.Tensor, xP: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_k r_{bk}\, xP_{bkj}`, (b, d) from (b, K) and (b, K, d) (as :func:`_row_quad`)."""
    if _on_numpy(r, xP):
        return torch.from_numpy(np.einsum("bk,bkd->bd", r.numpy(), xP.numpy()))
    return (r.unsqueeze(1) @ xP).squeeze(1)


class GaussianMixture(Prior):
    r"""Gaussian mixture :math:`\sum_k \pi_k N(\mu_k, \Sigma_k)` in R^d.

    Parameters
    ----------
    weights : array-like, shape (K,)
        Non-negative, summing to 1.
    means : array-like, shape (K, d)
    covs : array-like, shape (K, d, d)
        Symmetric positive semi-definite. Singular covariances are allowed (sampling and
        every marginal with ``alpha_bar < 1`` work; the density at ``alpha_bar = 1`` does
        not exist and :meth:`log_prob` refuses it).
    """

    def __init__(self, weights, means, covs, *, device=None, dtype=None):
        w, mu, cov = self._parameters(device, dtype, weights=weights, means=means, covs=covs)
        if w.ndim != 1:
            raise ValueError(f"weights must have shape (K,), got {tuple(w.shape)}")
        K = w.shape[0]
        if mu.ndim == 1 and K == 1:
            mu = mu[None]
        if mu.ndim != 2 or mu.shape[0] != K:
            raise ValueError(f"means must have shape (K={K}, d), got {tuple(mu.shape)}")
        d = mu.shape[1]
        if cov.ndim == 2 and K == 1:
            cov = cov[None]
        if cov.shape != (K, d, d):
            raise ValueError(f"covs must have shape ({K}, {d}, {d}), got {tuple(cov.shape)}")
        _check_weights(w)
        if not torch.allclose(cov, cov.transpose(-1, -2), atol=1e-10, rtol=1e-8):
            raise ValueError("covs must be symmetric")
        cov = 0.5 * (cov + cov.transpose(-1, -2))
        eig = torch.linalg.eigvalsh(cov)
        scale = eig.abs().amax(-1).clamp_min(1.0)
        if (eig < -1e-10 * scale[:, None]).any():
            raise ValueError("covs must be positive semi-definite")
        self.weights, self.means, self.covs, self.dim = w, mu, cov, d
        self._chol = None
        self._prec = None

    @property
    def n_components(self) -> int:
        return self.weights.shape[0]

    def describe(self):
        return {"family": "gmm", "d": self.dim, "K": self.n_components}

    def _cholesky(self):
        if self._chol is None:
            L, info = torch.linalg.cholesky_ex(self.covs)
            if (info != 0).any():
                raise ValueError("a component covariance is singular: the density does not "
                                 "exist at alpha_bar = 1 (use a marginal with alpha_bar < 1)")
            self._chol = L
        return self._chol

    def marginal(self, alpha_bar):
        abar = _check_abar(alpha_bar)
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        return self._derived(math.sqrt(abar) * self.means, abar * self.covs + (1 - abar) * eye)

    def _derived(self, means, covs) -> "GaussianMixture":
        r"""A mixture with these weights and the given means and covariances, without the
        constructor's checks: for a forward marginal, whose covariances
        :math:`\bar\alpha C_k + (1 - \bar\alpha) I` are exactly symmetric (elementwise
        combinations of this mixture's symmetrised ones, so symmetrising again would change no
        bit) and positive semi-definite (eigenvalues :math:`\bar\alpha\lambda + 1 -
        \bar\alpha`) when this mixture's are. Skips an eigendecomposition per marginal (about
        0.8 ms at K = 8, d = 64: a push-forward builds one per step)."""
        new = GaussianMixture.__new__(GaussianMixture)
        new._device, new._dtype = self.device, self.dtype
        new.weights, new.means, new.covs, new.dim = self.weights, means, covs, self.dim
        new._chol = None
        new._prec = None
        return new

    def sample(self, n, generator=None):
        n = int(n)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=self.dtype, device=self.device)
        # symmetric square root works for singular covariances too
        ev, U = torch.linalg.eigh(self.covs)
        root = U * ev.clamp_min(0).sqrt()[:, None, :]
        return self.means[k] + torch.einsum("nij,nj->ni", root[k], z)

    def _precision(self):
        r"""Cached precision data, centred at ``c`` (the mean of the component means, so that
        the expanded quadratic forms below lose few digits):
        ``(P, Pm, const, c, Pstack, Pflat)`` with :math:`P_k = C_k^{-1}` (K, d, d),
        :math:`P_k(m_k - c)` (K, d), the constant part of :math:`\log(\pi_k N(\cdot; m_k, C_k))`
        including :math:`-\tfrac12 (m_k - c)^\top P_k (m_k - c)` (K,), ``c`` (d,), the
        precisions stacked (K d, d) and flattened (K, d^2)."""
        if self._prec is None:
            L = self._cholesky()
            P = torch.cholesky_inverse(L)
            P = 0.5 * (P + P.transpose(-1, -2))
            logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
            c = self.means.mean(0)
            mc = self.means - c
            Pm = torch.einsum("kde,ke->kd", P, mc)
            const = torch.log(self.weights) - 0.5 * (logdet + self.dim * LOG_2PI) \
                - 0.5 * (mc * Pm).sum(1)
            K, d = self.n_components, self.dim
            # (K d, d), used transposed: the GEMM x @ [P_1 ... P_K] runs fastest this way
            self._prec = (P, Pm, const, c, P.reshape(K * d, d).contiguous(), P.reshape(K, d * d))
        return self._prec

    @property
    def precisions(self) -> torch.Tensor:
        """The component precisions :math:`C_k^{-1}`, shape (K, d, d) (cached)."""
        return self._precision()[0]

    _BLOCK = 256  # CPU rows per block: the (rows, K, d) temporaries stay in L2 between passes
    _FUSED_BLOCK = 512  # rows per block of the fused CPU score (measured 3% faster than 256)
    _GPU_BLOCK_ELEMENTS = 1 << 23  # CUDA: (rows, K, d) temporaries of at most 64 MB per block

    def _block_rows(self) -> int:
        """Rows per block of the score computations: the (rows, K, d) temporaries stay in
        cache on the CPU and within 64 MB on a GPU, so n is bounded by the (n, d) output
        alone, whatever K and d."""
        if self.device.type == "cuda":
            return max(1, self._GPU_BLOCK_ELEMENTS // (self.n_components * self.dim))
        return self._BLOCK

    def _blocks(self, x):
        r"""For each block of rows of x: per-component :math:`\log(\pi_k N(x; m_k, C_k))`
        (b, K) and :math:`P_k(x - c)` (b, K, d).

        One GEMM per block, ``(x - c) @ [P_1 ... P_K]``; the Mahalanobis terms follow from it
        by batched reductions: :math:`(x-m)^\top P (x-m) = (x-c)^\top P(x-c) - 2 (x-c)^\top
        P(m-c) + (m-c)^\top P(m-c)`."""
        P, Pm, const, c, Pstack, _ = self._precision()
        K, d = self.n_components, self.dim
        for xb in x.split(self._block_rows()):
            xc = xb - c
            xP = (xc @ Pstack.T).view(-1, K, d)                               # (b,K,d), P symmetric
            quad = _row_quad(xP, xc)                                          # (b,K)
            yield torch.addmm(const, xc, Pm.T).sub_(quad, alpha=0.5), xP      # const + lin - quad/2

    def _per_block(self, x, fn):
        out = [fn(logc, xP) for logc, xP in self._blocks(self._prep(x))]
        if out and isinstance(out[0], tuple):
            return tuple(o[0] if len(out) == 1 else torch.cat(o) for o in zip(*out))
        return out[0] if len(out) == 1 else torch.cat(out)

    @staticmethod
    def _softmax(logc):
        r = torch.exp(logc - logc.amax(1, keepdim=True))
        return r / r.sum(1, keepdim=True)

    def _score_of(self, r, xP):
        r""":math:`s = \sum_k r_k P_k(m_k - x) = r\,[P(m - c)] - \sum_k r_k P_k(x - c)`."""
        Pm = self._precision()[1]
        return torch.addmm(_row_mix(r, xP), r, Pm, beta=-1)

    def _jacobian_of(self, r, xP, s):
        r""":math:`\nabla s = -\sum_k r_k P_k + W^\top W`, :math:`W_k = \sqrt{r_k}(v_k - s)`,
        :math:`v_k = P_k(m_k - x)` (the covariance of v under r, without the cancellation of
        :math:`\sum r_k v_k v_k^\top - s s^\top`): one GEMM and one batched product."""
        Pm, Pflat = self._precision()[1], self._precision()[5]
        d = self.dim
        W = Pm[None] - xP                                                       # (b,K,d)
        if W.requires_grad:                       # autograd (Hessian checks): no in-place ops
            W = (W - s.unsqueeze(1)) * r.sqrt().unsqueeze(2)
            return torch.baddbmm((r @ Pflat).view(-1, d, d), W.transpose(1, 2), W, beta=-1)
        W.sub_(s.unsqueeze(1)).mul_(r.sqrt().unsqueeze(2))
        return _stacked_matmul(W.transpose(1, 2), W).sub_((r @ Pflat).view(-1, d, d))

    def log_prob(self, x):
        return self._per_block(x, lambda logc, xP: torch.logsumexp(logc, dim=1))

    def responsibilities(self, x):
        return self._per_block(x, lambda logc, xP: self._softmax(logc))

    def score(self, x):
        x = self._prep(x)
        if self.dtype == torch.float64 and _on_numpy(x, self.means, self.covs):
            return self._score_fused(x)
        return self._per_block(x, lambda logc, xP: self._score_of(self._softmax(logc), xP))

    def _fused_operands(self):
        """The CPU fused score's operands as numpy arrays (cached): ``[P_1 ... P_K | P(m - c)]``
        transposed, (d, K d + K), ``P(m - c)`` (K, d), the constants (K,), ``c`` (d,)."""
        if getattr(self, "_fused", None) is None:
            P, Pm, const, c, Pstack, _ = self._precision()
            right = np.ascontiguousarray(torch.cat([Pstack, Pm]).numpy().T)
            self._fused = (right, Pm.numpy(), const.numpy(), c.numpy())
        return self._fused

    def _score_fused(self, x):
        r"""The score on the CPU in float64 without autograd, fused per block of rows: one GEMM
        ``(x - c) @ [P_1 ... P_K | P(m - c)]`` gives every :math:`P_k(x - c)` and the linear
        terms at once; the quadratic forms and the responsibility-weighted sum are two
        ``numpy.einsum`` passes over its (b, K, d) part while it is in cache, the log-sum-exp
        (max shift) runs in place on the (b, K) block, and all temporaries are allocated once
        per call. The same formulas as :meth:`_blocks` and :meth:`_score_of`, in fewer passes
        (tests/test_fast_paths.py checks it against the per-component formula)."""
        right, Pm, const, c = self._fused_operands()
        K, d = self.n_components, self.dim
        n, Kd = x.shape[0], K * d
        xn = x.numpy()
        out = np.empty((n, d))
        B = self._FUSED_BLOCK
        Gn, xcn, logc, quad, col, lin = _fused_workspace(B, K, d)
        for i in range(0, n, B):
            b = min(B, n - i)
            np.subtract(xn[i:i + b], c, out=xcn[:b])
            np.matmul(xcn[:b], right, out=Gn[:b])        # numpy's BLAS: 4-10% above torch's here
            xP = Gn[:b, :Kd].reshape(b, K, d)                                # P_k(x - c), a view
            lc, q = logc[:b], quad[:b]
            np.add(Gn[:b, Kd:], const, out=lc)                                # const + linear
            np.einsum("bkd,bd->bk", xP, xcn[:b], out=q)
            q *= 0.5
            lc -= q                                                           # log pi_k N_k(x)
            mx = np.amax(lc, axis=1, keepdims=True, out=col[:b])
            lc -= mx
            np.exp(lc, out=lc)
            np.sum(lc, axis=1, keepdims=True, out=mx)
            lc /= mx                                                          # responsibilities
            o = out[i:i + b]
            np.einsum("bk,bkd->bd", lc, xP, out=o)
            np.subtract(np.matmul(lc, Pm, out=lin[:b]), o, out=o)
        return torch.from_numpy(out)

    def score_jacobian(self, x):
        def jac(logc, xP):
            r = self._softmax(logc)
            return self._jacobian_of(r, xP, self._score_of(r, xP))
        return self._per_block(x, jac)

    def score_and_jacobian(self, x, skip_one_hot: bool = False):
        """``(score(x), score_jacobian(x))`` from one pass (the push-forward steps need both).

        ``skip_one_hot=True``: rows whose responsibilities are exactly one-hot in floating point
        (all but one underflow to 0; then the Jacobian is exactly :math:`-P_k`) are not formed;
        returns ``(score, J_rest, hot)`` with ``hot`` (n,) the component of each such row and
        -1 elsewhere, and ``J_rest`` the Jacobians of the rows with ``hot == -1``, in order.
        """
        def both(logc, xP):
            r = self._softmax(logc)
            s = self._score_of(r, xP)
            if not skip_one_hot:
                return s, self._jacobian_of(r, xP, s)
            one = (r == 0).sum(1) == r.shape[1] - 1
            hot = torch.where(one, r.argmax(1), torch.full_like(one, -1, dtype=torch.long))
            rest = ~one
            return s, self._jacobian_of(r[rest], xP[rest], s[rest]), hot
        return self._per_block(x, both)

    def score_and_step_matrices(self, x, a: float, b: float):
        r"""``(score(x), M_rest, hot)``: the step matrices :math:`M = a I + b \nabla s(x)` of a
        push-forward step, for the rows whose responsibilities are not exactly one-hot (``hot``
        and the row order as in :meth:`score_and_jacobian` with ``skip_one_hot=True``; there
        :math:`M = a I - b P_k`).

        Formed without the Jacobian: the responsibilities sum to one, so
        :math:`M = \sum_k r_k (a I - b P_k) + b W^\top W` (:meth:`_jacobian_of`'s W, with
        :math:`|b|` folded into its row weights): one batched product written into the result
        and one GEMM accumulated into it, no other (n, d, d) array. Autograd or another device:
        from :meth:`score_and_jacobian`."""
        a, b = float(a), float(b)
        x = self._prep(x)
        if not _on_numpy(x, self.means, self.covs):
            s, J, hot = self.score_and_jacobian(x, skip_one_hot=True)
            M = J.mul_(b) if not J.requires_grad else b * J
            M.diagonal(dim1=-2, dim2=-1).add_(a)
            return s, M, hot
        P, Pm = self._precision()[:2]
        K, d = self.n_components, self.dim
        Mflat = (-b * P).reshape(K, d * d)
        Mflat[:, ::d + 1] += a                                      # (a I - b P_k), flattened

        def rows(logc, xP):                    # per block: the (b, K) and (b, K, d) parts
            r = self._softmax(logc)
            s = self._score_of(r, xP)
            one = (r == 0).sum(1) == r.shape[1] - 1
            hot = torch.where(one, r.argmax(1), torch.full_like(one, -1, dtype=torch.long))
            rest = ~one
            return s, hot, r[rest], Pm[None] - xP[rest]            # W_k = P_k(m_k - x)
        s, hot, r, W = self._per_block(x, rows)
        # then all rows at once, so that the (n, d, d) result is written in place, not joined
        s_rest = s[hot < 0]
        W.sub_(s_rest.unsqueeze(1)).mul_(r.mul(abs(b)).sqrt_().unsqueeze(2))
        M = _stacked_matmul(W.transpose(1, 2), W)                  # |b| W^T W
        if b < 0:
            M.neg_()
        M.view(-1, d * d).addmm_(r, Mflat)
        return s, M, hot

    def score_jacobian_vector(self, x, v):
        r""":math:`\nabla s(x) v = \sum_k r_k[-P_k v + u_k (u_k^\top v)] - s (s^\top v)`,
        :math:`u_k = P_k(m_k - x)`, in row blocks (no (n, d, d) array)."""
        x, v = self._prep(x), self._prep(v)
        P, Pm = self._precision()[:2]
        out = []
        for (logc, xP), vb in zip(self._blocks(x), v.split(self._block_rows())):
            r = self._softmax(logc)
            u = Pm[None] - xP                                                   # (b,K,d)
            s = (r[:, :, None] * u).sum(1)
            Pv = torch.einsum("kde,ne->nkd", P, vb)
            uv = (u * vb[:, None, :]).sum(-1)
            out.append((r[:, :, None] * (u * uv[:, :, None] - Pv)).sum(1)
                       - s * (s * vb).sum(1, keepdim=True))
        return out[0] if len(out) == 1 else torch.cat(out)


class Gaussian(GaussianMixture):
    r"""Gaussian prior :math:`N(\mu, \Sigma)`, a one-component mixture with its eigenbasis."""

    def __init__(self, mean, cov, *, device=None, dtype=None):
        dtype = _resolve_dtype(dtype)
        mean_t = torch.as_tensor(mean, dtype=dtype)
        cov_t = torch.as_tensor(cov, dtype=dtype)
        if mean_t.ndim != 1:
            raise ValueError(f"mean must have shape (d,), got {tuple(mean_t.shape)}")
        if cov_t.ndim != 2:
            raise ValueError(f"cov must have shape (d, d), got {tuple(cov_t.shape)}")
        super().__init__([1.0], mean_t[None], cov_t[None], device=device, dtype=dtype)

    @property
    def mean(self):
        return self.means[0]

    @property
    def cov(self):
        return self.covs[0]

    def eig(self):
        """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of the covariance."""
        return torch.linalg.eigh(self.cov)

    def marginal(self, alpha_bar):
        abar = _check_abar(alpha_bar)
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        return Gaussian(math.sqrt(abar) * self.mean, abar * self.cov + (1 - abar) * eye,
                        device=self.device, dtype=self.dtype)

    def describe(self):
        return {"family": "gaussian", "d": self.dim}


class IsotropicMixture(Prior):
    r"""Mixture of isotropic Gaussians :math:`\sum_k \pi_k N(\mu_k, v_k I_d)` in R^d.

    The same law as :class:`GaussianMixture` with covariances :math:`v_k I`, stored as K
    variances instead of K d x d matrices, so that d = 800 costs O(n K d) per score call
    and a marginal is O(K d) (the forward process keeps the family:
    :math:`v_k \mapsto \bar\alpha v_k + 1 - \bar\alpha`). Used by the Gaussian-mixture
    benchmark of Cardoso et al. (MCGdiff, arXiv:2308.07983: identity covariances).

    Parameters
    ----------
    weights : array-like, shape (K,)
    means : array-like, shape (K, d)
    variances : array-like, shape (K,)
        Positive.
    """

    def __init__(self, weights, means, variances, *, device=None, dtype=None):
        w, mu, var = self._parameters(device, dtype, weights=weights, means=means,
                                      variances=variances)
        if w.ndim != 1:
            raise ValueError(f"weights must have shape (K,), got {tuple(w.shape)}")
        K = w.shape[0]
        if mu.ndim != 2 or mu.shape[0] != K:
            raise ValueError(f"means must have shape (K={K}, d), got {tuple(mu.shape)}")
        var = var.reshape(-1)
        if var.shape != (K,) or (var <= 0).any():
            raise ValueError(f"variances must be {K} positive numbers")
        _check_weights(w)
        self.weights, self.means, self.variances, self.dim = w, mu, var, mu.shape[1]

    @property
    def n_components(self) -> int:
        return self.weights.shape[0]

    @property
    def covs(self) -> torch.Tensor:
        """Dense (K, d, d) covariances (for closed forms in moderate d)."""
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        return self.variances[:, None, None] * eye

    def describe(self):
        return {"family": "isotropic-gmm", "d": self.dim, "K": self.n_components}

    def marginal(self, alpha_bar):
        abar = _check_abar(alpha_bar)
        return IsotropicMixture(self.weights, math.sqrt(abar) * self.means,
                                abar * self.variances + (1 - abar), device=self.device,
                                dtype=self.dtype)

    def sample(self, n, generator=None):
        n = int(n)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=self.dtype, device=self.device)
        return self.means[k] + self.variances[k].sqrt()[:, None] * z

    def _logc(self, x):
        r"""Per-component log(pi_k N(x; mu_k, v_k I)), shape (n, K), through matrix products
        (:math:`\|x - \mu_k\|^2 = \|x\|^2 - 2x\cdot\mu_k + \|\mu_k\|^2`): O(n K d) time
        and no (n, K, d) temporaries."""
        v = self.variances
        sq = (x * x).sum(1, keepdim=True)
        maha = (sq - 2 * x @ self.means.T + (self.means ** 2).sum(1)[None]).clamp_min(0) / v
        return torch.log(self.weights) - 0.5 * (self.dim * (torch.log(v) + LOG_2PI) + maha)

    def log_prob(self, x):
        return torch.logsumexp(self._logc(self._prep(x)), dim=1)

    def responsibilities(self, x):
        return torch.softmax(self._logc(self._prep(x)), dim=1)

    def _weighted(self, x, c):
        r""":math:`\sum_k c_k(\mu_k - x)` for row weights c (n, K)."""
        return c @ self.means - x * c.sum(1, keepdim=True)

    def score(self, x):
        x = self._prep(x)
        r = torch.softmax(self._logc(x), dim=1)
        return self._weighted(x, r / self.variances)

    def score_jacobian(self, x):
        x = self._prep(x)
        r = torch.softmax(self._logc(x), dim=1)
        u = (self.means[None] - x[:, None, :]) / self.variances[None, :, None]    # (n,K,d)
        s = (r[:, :, None] * u).sum(1)
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        outer = torch.einsum("nk,nki,nkj->nij", r, u, u)
        return (-(r / self.variances).sum(1)[:, None, None] * eye + outer
                - s[:, :, None] * s[:, None, :])

    def score_jacobian_vector(self, x, v):
        x, vv = self._prep(x), self._prep(v)
        r = torch.softmax(self._logc(x), dim=1)
        rv = r / self.variances
        s = self._weighted(x, rv)
        uv = (vv @ self.means.T - (x * vv).sum(1, keepdim=True)) / self.variances  # u_k . v
        return (-rv.sum(1, keepdim=True) * vv + self._weighted(x, rv * uv)
                - s * (s * vv).sum(1, keepdim=True))


class ProductPrior(Prior):
    r"""Independent coordinates, coordinate ``i`` a 1-D mixture
    :math:`\sum_k w_{ik} N(\mu_{ik}, s_{ik}^2)`.

    Parameters
    ----------
    weights, means, stds : array-like, shape (d, K)
        Per-coordinate mixture parameters (``stds`` may be 0: a point mass component).
    """

    def __init__(self, weights, means, stds, *, device=None, dtype=None):
        # float64 numpy parameters on the CPU (the presets, prior files) stay numpy until a
        # tensor attribute is first read: the exact engines read them through
        # coordinate_params / coordinate_groups and never need torch
        arrays = _numpy_parameters(device, dtype, weights=weights, means=means, stds=stds)
        lazy = arrays is not None
        if not lazy:
            arrays = self._parameters(device, dtype, weights=weights, means=means, stds=stds)
        w, mu, sd = arrays
        if w.ndim != 2:
            raise ValueError(f"weights must have shape (d, K), got {tuple(w.shape)}")
        if mu.shape != w.shape or sd.shape != w.shape:
            raise ValueError(f"weights, means and stds must share shape (d, K); got "
                             f"{tuple(w.shape)}, {tuple(mu.shape)}, {tuple(sd.shape)}")
        (_check_weights_numpy if lazy else _check_weights)(w)
        if (sd < 0).any():
            raise ValueError("stds must be non-negative")
        self._numpy = (w, mu, sd) if lazy else None
        self._tensors = None if lazy else (w, mu, sd)
        self.dim = w.shape[0]

    def _parameter_tensors(self):
        """(weights, means, stds) as tensors, made from the numpy parameters on first use
        (as :meth:`Prior._parameters` would have made them)."""
        if self._tensors is None:
            self._tensors = tuple(_as_tensor(a, name, self.device, self.dtype) for name, a in
                                  zip(("weights", "means", "stds"), self._numpy))
        return self._tensors

    def _set_parameter(self, i, value):
        t = list(self._parameter_tensors())
        t[i] = value
        self._tensors, self._numpy = tuple(t), None

    weights = property(lambda self: self._parameter_tensors()[0],
                       lambda self, v: self._set_parameter(0, v),
                       doc="Per-coordinate component weights, shape (d, K).")
    means = property(lambda self: self._parameter_tensors()[1],
                     lambda self, v: self._set_parameter(1, v),
                     doc="Per-coordinate component means, shape (d, K).")
    stds = property(lambda self: self._parameter_tensors()[2],
                    lambda self, v: self._set_parameter(2, v),
                    doc="Per-coordinate component standard deviations, shape (d, K).")

    def describe(self):
        return {"family": "product", "d": self.dim, "K": (self._numpy or self._tensors)[0].shape[1]}

    def marginal(self, alpha_bar):
        abar = _check_abar(alpha_bar)
        var = abar * self.stds ** 2 + (1 - abar)
        return ProductPrior(self.weights, math.sqrt(abar) * self.means, var.sqrt(),
                            device=self.device, dtype=self.dtype)

    def coordinate_params(self, i: int):
        """``(weights, means, stds)`` of coordinate ``i`` as float64 numpy arrays."""
        if self._numpy is not None:
            return tuple(a[i].astype(np.float64) for a in self._numpy)
        return tuple(a[i].detach().cpu().numpy().astype(np.float64)
                     for a in (self.weights, self.means, self.stds))

    def coordinate_groups(self):
        """Group identical coordinates: list of ``(index_of_representative, multiplicity)``."""
        if self._numpy is not None:
            stacked = np.concatenate(self._numpy, axis=1)
        else:
            stacked = torch.cat([self.weights, self.means, self.stds], dim=1).cpu().numpy()
        _, first, counts = np.unique(stacked, axis=0, return_index=True, return_counts=True)
        order = np.argsort(first)
        return [(int(first[j]), int(counts[j])) for j in order]

    def sample(self, n, generator=None):
        n = int(n)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator).T  # (n,d)
        idx = torch.arange(self.dim, device=self.device)[None, :]
        z = torch.randn(n, self.dim, generator=generator, dtype=self.dtype, device=self.device)
        return self.means[idx, k] + self.stds[idx, k] * z

    def _terms(self, x):
        """Per-component log(w N(x_i; mu, s^2)) and (mu - x_i)/s^2, both shaped (K, n, d):
        the component axis leads, since torch reduces a short trailing axis slowly."""
        if (self.stds == 0).any():
            raise ValueError("a point-mass component has no density: use a marginal with "
                             "alpha_bar < 1")
        var = (self.stds ** 2).T[:, None, :]                                # (K,1,d)
        diff = self.means.T[:, None, :] - x[None]                           # (K,n,d)
        logc = torch.log(self.weights).T[:, None, :] - 0.5 * (diff ** 2 / var + torch.log(var)
                                                              + LOG_2PI)
        return logc, diff / var

    def _responsibilities(self, logc):
        """Softmax over the components (the leading axis); for two components the logistic
        function of the log ratio (one exponential instead of a softmax's passes)."""
        if logc.shape[0] == 2:
            delta = logc[1] - logc[0]
            return torch.stack([torch.sigmoid(-delta), torch.sigmoid(delta)], 0)
        return torch.softmax(logc, dim=0)

    def log_prob(self, x):
        x = self._prep(x)
        logc, _ = self._terms(x)
        return torch.logsumexp(logc, dim=0).sum(1)

    def responsibilities(self, x):
        """Per-coordinate component responsibilities, shape (n, d, K)."""
        x = self._prep(x)
        logc, _ = self._terms(x)
        return self._responsibilities(logc).permute(1, 2, 0)

    def score(self, x):
        x = self._prep(x)
        logc, v = self._terms(x)
        if v.shape[0] == 2:
            r1 = torch.sigmoid(logc[1] - logc[0])
            return torch.lerp(v[0], v[1], r1)
        return (self._responsibilities(logc) * v).sum(0)

    def score_jacobian_diag(self, x):
        r"""Diagonal of the (diagonal) score Jacobian, shape (n, d):
        :math:`\sum_k r_k u_k^2 - s^2 - \sum_k r_k/\sigma_k^2`, written as the variance of
        :math:`u_k = (\mu_k - x)/\sigma_k^2` under r minus the mean precision (no
        cancellation)."""
        x = self._prep(x)
        logc, v = self._terms(x)
        r = self._responsibilities(logc)
        s = (r * v).sum(0)
        prec = 1 / (self.stds ** 2).T[:, None, :]
        return (r * ((v - s[None]) ** 2 - prec)).sum(0)

    def score_jacobian(self, x):
        return torch.diag_embed(self.score_jacobian_diag(x))

    def score_jacobian_vector(self, x, v):
        return self.score_jacobian_diag(x) * self._prep(v)


class SubspaceMixture(Prior):
    r"""A k-dimensional prior embedded in R^d: :math:`X = U Z + \sqrt{v_\perp} P_\perp W`.

    ``Z`` follows the ``inner`` prior (dimension k), ``U`` (d x k) has orthonormal columns,
    and off the subspace the law is :math:`N(0, v_\perp (I - U U^\top))` (``perp_var = 0``:
    supported on the subspace). The forward process keeps this split (THEORY.md section 4):
    the inner part follows the inner prior's marginal and
    :math:`v_\perp \mapsto \bar\alpha v_\perp + 1 - \bar\alpha`.
    """

    def __init__(self, inner: Prior, basis=None, dim: Optional[int] = None, perp_var=0.0):
        self.inner = inner
        # an inner prior that has not resolved its device and dtype (numpy parameters, see
        # ProductPrior) and the default basis: the basis too stays numpy until it is read
        lazy = (basis is None and isinstance(inner, Prior) and inner._device is None
                and inner._dtype is None)
        if not lazy:
            self.device, self.dtype = inner.device, inner.dtype
        k = inner.dim
        if basis is None:
            if dim is None:
                raise ValueError("give either basis (d x k) or dim")
            dim = int(dim)
            if dim < k:
                raise ValueError(f"ambient dimension {dim} is below the subspace dimension {k}")
            if lazy:                  # the first k coordinate axes: orthonormal by construction
                perp_var = float(perp_var)
                if not (math.isfinite(perp_var) and perp_var >= 0):
                    raise ValueError(f"perp_var must be a non-negative number, got {perp_var}")
                self._basis = None
                self.perp_var, self.dim, self.k = perp_var, dim, k
                return
            basis = torch.eye(dim, k, dtype=self.dtype, device=self.device)
        U = _as_tensor(basis, "basis", self.device, self.dtype)
        if U.ndim != 2 or U.shape[1] != k:
            raise ValueError(f"basis must have shape (d, {k}), got {tuple(U.shape)}")
        gram = U.T @ U
        if not torch.allclose(gram, torch.eye(k, dtype=self.dtype, device=self.device),
                              atol=1e-8):
            raise ValueError("basis columns must be orthonormal")
        perp_var = float(perp_var)
        if not (math.isfinite(perp_var) and perp_var >= 0):
            raise ValueError(f"perp_var must be a non-negative number, got {perp_var}")
        self._basis, self.perp_var, self.dim, self.k = U, perp_var, U.shape[0], k

    @property
    def basis(self) -> "torch.Tensor":
        """The orthonormal (d, k) basis of the subspace."""
        if self._basis is None:       # the default basis, made on first read
            self._basis = torch.eye(self.dim, self.k, dtype=self.dtype, device=self.device)
        return self._basis

    @basis.setter
    def basis(self, value):
        self._basis = value

    def describe(self):
        return {"family": "subspace", "d": self.dim, "k": self.k, "perp_var": self.perp_var,
                "inner": self.inner.describe()}

    def marginal(self, alpha_bar):
        abar = _check_abar(alpha_bar)
        return SubspaceMixture(self.inner.marginal(abar), self.basis,
                               perp_var=abar * self.perp_var + (1 - abar))

    def _split(self, x):
        z = x @ self.basis
        return z, x - z @ self.basis.T

    def sample(self, n, generator=None):
        z = self.inner.sample(n, generator=generator)
        x = z @ self.basis.T
        if self.perp_var > 0 and self.dim > self.k:
            w = torch.randn(int(n), self.dim, generator=generator, dtype=self.dtype,
                            device=self.device)
            w = w - (w @ self.basis) @ self.basis.T
            x = x + math.sqrt(self.perp_var) * w
        return x

    def log_prob(self, x):
        x = self._prep(x)
        z, r = self._split(x)
        m = self.dim - self.k
        if m == 0:
            return self.inner.log_prob(z)
        if self.perp_var == 0:
            raise ValueError("the prior has no density off its subspace (perp_var = 0): use a "
                             "marginal with alpha_bar < 1")
        v = self.perp_var
        return self.inner.log_prob(z) - 0.5 * ((r ** 2).sum(1) / v + m * (math.log(v) + LOG_2PI))

    def score(self, x):
        x = self._prep(x)
        z, r = self._split(x)
        out = self.inner.score(z) @ self.basis.T
        if self.dim > self.k:
            if self.perp_var == 0:
                raise ValueError("the score does not exist off the subspace at alpha_bar = 1")
            out = out - r / self.perp_var
        return out

    def score_jacobian(self, x):
        x = self._prep(x)
        z, _ = self._split(x)
        J = self.basis @ self.inner.score_jacobian(z) @ self.basis.T
        if self.dim > self.k:
            if self.perp_var == 0:
                raise ValueError("the score does not exist off the subspace at alpha_bar = 1")
            P = torch.eye(self.dim, dtype=self.dtype, device=self.device) - self.basis @ self.basis.T
            J = J - P / self.perp_var
        return J


# --------------------------------------------------------------------------------------
# Presets (the exact parameters of issue 2)
# --------------------------------------------------------------------------------------

def bimodal(d: int, *, device=None, dtype=None) -> ProductPrior:
    """Every coordinate independent, ``0.5 N(-2, 0.25^2) + 0.5 N(2, 0.25^2)``."""
    d = _check_dim(d, "bimodal")
    w = np.full((d, 2), 0.5)
    mu = np.tile(np.array([-2.0, 2.0]), (d, 1))
    sd = np.full((d, 2), 0.25)
    return ProductPrior(w, mu, sd, device=device, dtype=dtype)


def gauss(d: int, *, device=None, dtype=None) -> ProductPrior:
    """``N(0, diag(lambda))`` with lambda log-spaced from 0.1 to 10 (lambda = 1 when d = 1).

    Stored as a product of 1-D Gaussians (one-component mixtures): the same law as
    ``Gaussian(0, diag(lambda))`` without a dense d x d covariance, so d = 10^4 is cheap.
    """
    d = _check_dim(d, "gauss")
    lam = np.ones(1) if d == 1 else _logspace(-1.0, 1.0, d)
    return ProductPrior(np.ones((d, 1)), np.zeros((d, 1)), np.sqrt(lam)[:, None],
                        device=device, dtype=dtype)


def _logspace(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.logspace(start, end, steps, dtype=torch.float64)`` (base 10) bit for bit,
    without torch: torch's CPU kernel takes the exponent ``start + step * i`` on the first
    half and ``end - step * (steps - 1 - i)`` on the second, and ``std::pow`` (the C
    library's ``pow``, which ``math.pow`` calls; numpy's vectorised power differs in the
    last bit). Checked against torch in tests/test_startup.py."""
    step = (end - start) / (steps - 1)
    half = steps // 2
    return np.array([math.pow(10.0, start + step * i) if i < half
                     else math.pow(10.0, end - step * (steps - i - 1)) for i in range(steps)])


def subspace(d: int, *, device=None, dtype=None) -> SubspaceMixture:
    """4 equal weights, means ``(+-2, +-2, 0, ..., 0)``, covariance ``diag(0.25^2, 0.25^2, 0, ...)``.

    The in-plane part is stored as the 2-D product prior with coordinates
    ``0.5 N(-2, 0.25^2) + 0.5 N(2, 0.25^2)``: the same law, since equal weights 1/4 on the
    four sign patterns factorise.
    """
    d = _check_dim(d, "subspace")
    if d < 2:
        raise ValueError("the subspace prior lives on a plane: it needs d >= 2")
    return SubspaceMixture(bimodal(2, device=device, dtype=dtype), dim=d, perp_var=0.0)


def gmm(d: int, *, seed: int = 0, n_components: int = 8, device=None,
        dtype=None) -> GaussianMixture:
    r"""8 components in R^d with seeded random parameters. Recipe (CPU torch generator
    seeded with ``seed``, drawn in this order):

    * weights: equal, 1/8 each;
    * means: :math:`\mu_k \sim N(0, 2^2 I_d)`;
    * covariances: :math:`\Sigma_k = 0.1^2 I + 0.2^2 A_k A_k^\top / d`, :math:`A_k` a d x d
      matrix of iid N(0, 1) entries (full, well conditioned, per-coordinate sd about 0.22).
    """
    K = integer("n_components", n_components, lo=1)
    seed = integer("seed", seed, lo=0)
    d = _check_dim(d, "gmm", K)
    g = torch.Generator().manual_seed(seed)
    means = 2.0 * torch.randn(K, d, generator=g, dtype=torch.float64)
    A = torch.randn(K, d, d, generator=g, dtype=torch.float64)
    covs = 0.01 * torch.eye(d, dtype=torch.float64) + 0.04 * A @ A.transpose(-1, -2) / d
    return GaussianMixture(torch.full((K,), 1.0 / K), means, covs, device=device, dtype=dtype)


PRESETS = {"bimodal": bimodal, "gauss": gauss, "subspace": subspace, "gmm": gmm}


def make_prior(name: str, d: int, *, device=None, dtype=None, **kwargs) -> Prior:
    """Build a preset prior by name: ``bimodal``, ``gauss``, ``subspace``, ``gmm``."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"unknown prior {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name](d, device=device, dtype=dtype, **kwargs)


def preset_memory(name: str, d: int, n_components: int = 8) -> int:
    """Bytes a preset's parameters take in float64 at dimension ``d`` (a lower bound of what
    building it allocates): (d, 2) weights, means and sds for the product presets (``subspace``
    adds its (d, 2) basis), and the K (d, d) matrices A_k and covariances for ``gmm``."""
    if name == "gmm":
        return 16 * int(n_components) * d * d
    return 48 * d + (16 * d if name == "subspace" else 0)


def _check_dim(d, name: str, n_components: int = 8) -> int:
    """``d`` as an int >= 1 whose preset fits in memory (:func:`theory.checks.check_memory`)."""
    d = integer("d", d, lo=1)
    check_memory(preset_memory(name, d, n_components), f"the {name} prior in d = {d}")
    return d
