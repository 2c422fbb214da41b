r"""The Gaussian measurement ensemble of matrix sensing, and the random sources, devices and
integer/dtype checks every low-rank module shares (THEORY.md section 7, ScaledGD entry).

:math:`\mathcal A(X)_k = \langle A_k, X\rangle`, k = 1..m, entries of :math:`A_k` i.i.d.
:math:`N(0, 1/m)` (the authors' ``MS.m``), so :math:`E\|\mathcal A(X)\|^2 = \|X\|_F^2`.

Dense or matrix-free: :class:`GaussianSensingOperator` keeps the :math:`m \times n_1 n_2`
design in memory when it fits the memory budget (:func:`dense_budget`: a third of the
available memory, shared among the local pool's workers), else it regenerates its rows block
by block from per-block seeds on every application; the dense form is the same numbers
(built from the same blocks). At the paper's size (10^4 x 4 * 10^4, 3.2 GB) a dense
gradient costs 0.34-0.53 s on one CPU core, regenerating the 4 * 10^8 normals 12.7-15.6 s.
When m > n1 n2 (the RIP-regime tests) the normal operator goes through the cached
(n1 n2)^2 Gram matrix instead.

Every random draw comes from a seed (an int) or a ``torch.Generator``; the design is drawn
on ``device`` (a CUDA stream differs from the CPU one).

References:
    Tong, Ma, Chi, JMLR 22(150), 2021, arXiv:2005.08898 (and the authors' MATLAB code).
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Optional, Union

import torch

__all__ = ["GaussianSensingOperator", "DEFAULT_DTYPE", "Seed", "dense_budget"]

DEFAULT_DTYPE = torch.float64
Seed = Union[int, torch.Generator]


#: smallest memory budget of a dense design (bytes), whatever the machine says
MIN_DENSE_BYTES = 2 ** 28


def dense_budget(device=None) -> int:
    """Bytes a dense design (or Gram matrix) may take on ``device``: a third of the memory
    available there now (:func:`theory.checks.available_memory`) times this process's share
    of the machine, ``DIFFRATES_MEMORY_SHARE`` (the local pool sets 1 / workers in each
    worker; default 1), and at least :data:`MIN_DENSE_BYTES` (256 MiB)."""
    from theory.checks import available_memory
    avail = available_memory("cpu" if device is None else device)
    try:
        share = float(os.environ.get("DIFFRATES_MEMORY_SHARE", "1"))
    except ValueError:
        share = 1.0
    share = min(max(share, 0.0), 1.0)
    if avail is None:
        return MIN_DENSE_BYTES
    return max(MIN_DENSE_BYTES, int(avail * share / 3))


# ----------------------------------------------------------------------------- checks, random sources
def _check_int(x, name, low=1) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {x!r}")
    x = int(x)
    if x < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {x}")
    return x


def _check_dtype(dtype):
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
    return dtype


def _device(device) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


def _generator(seed: Seed) -> torch.Generator:
    """A generator from an int seed (CPU) or the generator itself."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _randn(shape, g: torch.Generator, device, dtype):
    return torch.randn(*shape, generator=g, device=g.device, dtype=dtype).to(device)


def _rand(shape, g: torch.Generator, device, dtype):
    return torch.rand(*shape, generator=g, device=g.device, dtype=dtype).to(device)


# ----------------------------------------------------------------------------- sensing operator
class GaussianSensingOperator:
    r"""The Gaussian measurement ensemble :math:`\mathcal A(X)_k = \langle A_k, X\rangle`, k = 1..m.

    Entries of :math:`A_k` are i.i.d. :math:`N(0, 1/m)`, so :math:`E\|\mathcal A(X)\|^2 = \|X\|_F^2`.
    With ``symmetric=True`` the design is :math:`(A_k + A_k^\top)/2` (for PSD sensing): on a
    symmetric X it gives the same values, and its adjoint is symmetric.

    Rows are drawn in blocks of ``block_rows``, block b from a generator on ``device``
    seeded with ``base_seed + b``. When the dense matrix (m x n1 n2) is at most
    ``max_dense_bytes`` it is built once from those blocks; otherwise each application
    regenerates them (matrix-free; memory one block). Either way the numbers are the same.

    Parameters
    ----------
    n1, n2, m : int
        Matrix shape and number of measurements.
    seed : int or torch.Generator
        Source of ``base_seed``.
    symmetric : bool
        Symmetrised design (needs ``n1 == n2``).
    dense : bool or None
        Force dense (True) or matrix-free (False); None picks by ``max_dense_bytes``.
    max_dense_bytes : int or None
        Largest dense design (and Gram matrix) kept in memory; None: :func:`dense_budget`.
    block_rows : int or None
        Rows per block (default: about 2**22 entries per block).
    """

    def __init__(self, n1: int, n2: int, m: int, *, seed: Seed = 0, symmetric: bool = False,
                 dense: Optional[bool] = None, max_dense_bytes: Optional[int] = None,
                 block_rows: Optional[int] = None, gram: Optional[bool] = None, device=None,
                 dtype=DEFAULT_DTYPE):
        self.n1 = _check_int(n1, "n1")
        self.n2 = _check_int(n2, "n2")
        self.m = _check_int(m, "number of measurements m")
        self.dtype = _check_dtype(dtype)
        self.device = _device(device)
        self.symmetric = bool(symmetric)
        if self.symmetric and self.n1 != self.n2:
            raise ValueError(f"a symmetric design needs n1 == n2, got {n1} and {n2}")
        g = _generator(seed)
        self.base_seed = int(torch.randint(0, 2 ** 62, (1,), generator=g))
        d = self.n1 * self.n2
        if block_rows is None:
            block_rows = max(1, min(self.m, (1 << 22) // d))
        self.block_rows = _check_int(block_rows, "block_rows")
        nbytes = self.m * d * torch.finfo(self.dtype).bits // 8
        if max_dense_bytes is None:
            max_dense_bytes = dense_budget(self.device)
        self.dense = (nbytes <= max_dense_bytes) if dense is None else bool(dense)
        self._A = None
        if self.dense:                 # filled block by block: no second copy at the peak
            self._A = torch.empty(self.m, d, dtype=self.dtype, device=self.device)
            for sl, blk in self._blocks():
                self._A[sl] = blk
        gram_bytes = d * d * torch.finfo(self.dtype).bits // 8
        if gram is None:
            gram = self.m > d and gram_bytes <= max_dense_bytes
        self._G = None
        if gram:
            self._G = torch.zeros(d, d, dtype=self.dtype, device=self.device)
            for _, blk in self._iter_blocks():
                self._G += blk.T @ blk
        self._b_for = None  # (y, A^T y) of the last y seen by normal()

    # -- blocks
    def _blocks(self):
        d = self.n1 * self.n2
        std = 1.0 / math.sqrt(self.m)
        for b, start in enumerate(range(0, self.m, self.block_rows)):
            rows = min(self.block_rows, self.m - start)
            g = torch.Generator(device=self.device).manual_seed(self.base_seed + b)
            blk = torch.randn(rows, d, generator=g, device=self.device, dtype=self.dtype)
            blk.mul_(std)
            yield slice(start, start + rows), blk

    def _iter_blocks(self):
        if self._A is not None:
            yield slice(0, self.m), self._A
        else:
            yield from self._blocks()

    def _sym(self, X):
        return 0.5 * (X + X.T) if self.symmetric else X

    def _check_matrix(self, X):
        if X.shape != (self.n1, self.n2):
            raise ValueError(f"expected a matrix of shape ({self.n1}, {self.n2}), got {tuple(X.shape)}")

    # -- applications
    def forward(self, X: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal A(X)`: X shape (n1, n2) -> shape (m,)."""
        self._check_matrix(X)
        x = self._sym(X).reshape(-1)
        out = torch.empty(self.m, dtype=self.dtype, device=self.device)
        for sl, blk in self._iter_blocks():
            out[sl] = blk @ x
        return out

    __call__ = forward

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal A^*(z) = \sum_k z_k A_k`: z shape (m,) -> shape (n1, n2)."""
        if z.shape != (self.m,):
            raise ValueError(f"expected a vector of shape ({self.m},), got {tuple(z.shape)}")
        acc = torch.zeros(self.n1 * self.n2, dtype=self.dtype, device=self.device)
        for sl, blk in self._iter_blocks():
            acc += blk.T @ z[sl]
        return self._sym(acc.reshape(self.n1, self.n2))

    @property
    def uses_gram(self) -> bool:
        """Whether :meth:`normal` goes through the cached Gram matrix."""
        return self._G is not None

    def normal(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal A^*(\mathcal A(X) - y)`, X shape (n1, n2), y shape (m,) -> (n1, n2).

        With a Gram matrix :math:`G = \sum_k \mathrm{vec}(A_k)\mathrm{vec}(A_k)^\top`
        (kept when m > n1 n2 and it fits) this is :math:`Gx - A^\top y` at cost
        (n1 n2)^2 instead of 2 m n1 n2; otherwise one fused pass over the blocks."""
        self._check_matrix(X)
        if y.shape != (self.m,):
            raise ValueError(f"expected y of shape ({self.m},), got {tuple(y.shape)}")
        x = self._sym(X).reshape(-1)
        if self._G is not None:
            if self._b_for is None or self._b_for[0] is not y:
                b = torch.zeros(self.n1 * self.n2, dtype=self.dtype, device=self.device)
                for sl, blk in self._iter_blocks():
                    b += blk.T @ y[sl]
                self._b_for = (y, b)
            acc = self._G @ x - self._b_for[1]
        elif self._A is not None:
            acc = self._A.T @ (self._A @ x - y)
        else:
            acc = torch.zeros(self.n1 * self.n2, dtype=self.dtype, device=self.device)
            for sl, blk in self._iter_blocks():
                acc += blk.T @ (blk @ x - y[sl])
        return self._sym(acc.reshape(self.n1, self.n2))

    def to_dense(self) -> torch.Tensor:
        """The design as a dense tensor, shape (m, n1 * n2) (row k is vec(A_k), row-major;
        the symmetrised rows for ``symmetric=True``)."""
        A = self._A if self._A is not None else torch.cat([b for _, b in self._blocks()], 0)
        if self.symmetric:
            A3 = A.reshape(self.m, self.n1, self.n2)
            A = (0.5 * (A3 + A3.transpose(1, 2))).reshape(self.m, -1)
        return A

    def describe(self) -> dict:
        return {"n1": self.n1, "n2": self.n2, "m": self.m, "symmetric": self.symmetric,
                "dense": self.dense, "gram": self.uses_gram, "block_rows": self.block_rows}
