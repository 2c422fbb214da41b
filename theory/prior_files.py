r"""Custom priors from a file: a Gaussian mixture, a product of 1-D mixtures, or a subspace
mixture, as JSON or NPZ.

Formats (arrays as nested lists in JSON, as arrays in NPZ; ``kind`` defaults to ``mixture``):

* ``{"kind": "mixture", "weights": (K,), "means": (K, d), "covariances": (K, d, d)}`` - a
  :class:`~theory.priors.GaussianMixture` (one component: a :class:`~theory.priors.Gaussian`,
  which has exact laws in any d);
* ``{"kind": "gaussian", "mean": (d,), "covariance": (d, d)}``;
* ``{"kind": "product", "weights": (d, K), "means": (d, K), "stds": (d, K)}`` - independent
  coordinates (:class:`~theory.priors.ProductPrior`, exact laws in any d);
* ``{"kind": "subspace", "inner": {...}, "basis": (d, k)}`` or ``"d": d`` (the first k
  coordinates), optional ``"perp_var"`` (variance off the subspace, default 0) - a
  :class:`~theory.priors.SubspaceMixture`; in NPZ the inner prior's arrays are named
  ``inner_weights``, ``inner_means``, ... and its kind ``inner_kind``.

Every problem is a one-line ``ValueError`` naming the file and the field (missing or unknown
fields, shapes, weights that do not sum to 1, covariances that are not symmetric positive
semi-definite, negative standard deviations).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .priors import Gaussian, GaussianMixture, Prior, ProductPrior, SubspaceMixture

__all__ = ["load_prior", "prior_from_dict", "file_digest", "KINDS"]

KINDS = {"mixture": ("weights", "means", "covariances"), "gaussian": ("mean", "covariance"),
         "product": ("weights", "means", "stds"), "subspace": ("inner",)}
_OPTIONAL = {"subspace": ("basis", "d", "perp_var")}


def file_digest(path) -> str:
    """SHA-256 of a file's bytes (recorded with results, so that a changed file is a new
    configuration)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"prior file {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"prior file {path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"prior file {path}: the JSON must be an object with named fields")
        return data
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                flat = {k: z[k] for k in z.files}
        except (ValueError, OSError) as exc:
            raise ValueError(f"prior file {path}: not a readable NPZ archive ({exc})") from None
        data = {k: (str(v) if v.dtype.kind in "US" else v) for k, v in flat.items()
                if not k.startswith("inner_")}
        inner = {k[6:]: (str(v) if v.dtype.kind in "US" else v) for k, v in flat.items()
                 if k.startswith("inner_")}
        if inner:
            data["inner"] = inner
        return data
    raise ValueError(f"prior file {path}: unknown format {suffix!r} (use .json or .npz)")


def _array(where, data, key, ndim):
    try:
        arr = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: field {key!r} must be numeric") from None
    if arr.ndim != ndim:
        raise ValueError(f"{where}: field {key!r} must have {ndim} dimension(s), got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: field {key!r} contains NaN or infinite values")
    return arr


def prior_from_dict(data: dict, where: str = "prior", device=None) -> Prior:
    """The prior described by ``data`` (module docstring); ``where`` names it in messages."""
    kind = str(data.get("kind", "mixture"))
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    allowed = set(KINDS[kind]) | set(_OPTIONAL.get(kind, ())) | {"kind"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} for kind {kind!r} "
                         f"(fields: {', '.join(sorted(allowed - {'kind'}))})")
    missing = [k for k in KINDS[kind] if k not in data]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)} for kind {kind!r}")
    try:
        if kind == "mixture":
            w = _array(where, data, "weights", 1)
            mu = _array(where, data, "means", 2)
            cov = _array(where, data, "covariances", 3)
            if w.size == 1:
                return Gaussian(mu[0], cov[0], device=device)
            return GaussianMixture(w, mu, cov, device=device)
        if kind == "gaussian":
            return Gaussian(_array(where, data, "mean", 1), _array(where, data, "covariance", 2),
                            device=device)
        if kind == "product":
            return ProductPrior(_array(where, data, "weights", 2), _array(where, data, "means", 2),
                                _array(where, data, "stds", 2), device=device)
        inner_data = data["inner"]
        if not isinstance(inner_data, dict):
            raise ValueError(f"{where}: field 'inner' must be an object describing a prior")
        inner = prior_from_dict(inner_data, where + " (inner)", device=device)
        if isinstance(inner, SubspaceMixture):
            raise ValueError(f"{where}: the inner prior of a subspace prior cannot be a subspace "
                             "prior")
        perp = float(data.get("perp_var", 0.0))
        if "basis" in data:
            return SubspaceMixture(inner, basis=_array(where, data, "basis", 2), perp_var=perp)
        if "d" not in data:
            raise ValueError(f"{where}: a subspace prior needs 'basis' (d x k) or 'd'")
        d = float(np.asarray(data["d"]))
        if not d.is_integer():
            raise ValueError(f"{where}: field 'd' must be an integer")
        return SubspaceMixture(inner, dim=int(d), perp_var=perp)
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def load_prior(path, device=None) -> Prior:
    """Read a prior from a JSON or NPZ file (module docstring); ``ValueError`` on any problem."""
    path = Path(path)
    return prior_from_dict(_read(path), f"prior file {path}", device=device)
