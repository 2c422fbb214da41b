"""Argument checks shared by the library and the command line.

Every check returns the value converted to its canonical type or raises ``ValueError`` with
a one-line message that names the argument and what it must be, so that the command line
can print the message as it is (status 2) and a library caller gets the same words.

    integer("T", "1000", lo=2)          -> 1000
    number("eta", 0.3, positive=True)   -> 0.3
    choice("metric", "tv", METRICS)     -> "tv"
    numbers("y", "0.7,-1", lo=-1e6, hi=1e6)  -> [0.7, -1.0]
    not_applicable("c0", 3, "schedule li", "schedule linear")   -> ValueError
    check_memory(8 * n * d, f"{n} samples in d = {d}")        -> ValueError if too big
    check_writable_dir("results", "results folder")           -> Path, or ValueError

The last two look at the machine (available memory, the folder's disk): the command line
calls them before computing anything, so that a request that cannot finish is refused in
one line at once instead of failing after minutes of work.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Optional

from ._lazy import torch

__all__ = ["NoExactLaw", "number", "integer", "positive", "nonnegative", "choice", "numbers",
           "not_applicable", "available_memory", "check_memory", "check_writable_dir",
           "human_bytes", "MIN_FREE_DISK"]


class NoExactLaw(ValueError):
    """The request is valid but no exact engine computes it (a sample-based method may)."""


def _as_float(name: str, v) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{name} must be a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return f


def number(name: str, v, *, lo: Optional[float] = None, hi: Optional[float] = None,
           positive: bool = False) -> float:
    """``v`` as a finite float, with optional bounds ``lo <= v <= hi`` and ``v > 0``."""
    f = _as_float(name, v)
    if positive and f <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    if lo is not None and f < lo:
        raise ValueError(f"{name} must be >= {lo:g}, got {v!r}")
    if hi is not None and f > hi:
        raise ValueError(f"{name} must be <= {hi:g}, got {v!r}")
    return f


def integer(name: str, v, *, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    """``v`` as an int (``"1e3"`` and ``1000.0`` are accepted, ``2.5`` is not), with bounds."""
    f = _as_float(name, v)
    if not f.is_integer():
        raise ValueError(f"{name} must be an integer, got {v!r}")
    i = int(f)
    if lo is not None and i < lo:
        raise ValueError(f"{name} must be >= {lo}, got {i}")
    if hi is not None and i > hi:
        raise ValueError(f"{name} must be <= {hi}, got {i}")
    return i


def positive(name: str, v) -> float:
    """``v`` as a positive finite float."""
    return number(name, v, positive=True)


def nonnegative(name: str, v) -> float:
    """``v`` as a non-negative finite float."""
    f = _as_float(name, v)
    if f < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {v!r}")
    return f


def choice(name: str, v, options: Iterable[str]) -> str:
    """``v`` if it is one of ``options``; otherwise the message lists them."""
    options = tuple(options)
    if not isinstance(v, str) or v not in options:
        raise ValueError(f"unknown {name} {v!r}; choose from {', '.join(options)}")
    return v


def numbers(name: str, v, *, lo: Optional[float] = None, hi: Optional[float] = None) -> list:
    """``v`` (a number, a sequence of numbers or ``"a,b,..."``) as a list of finite floats, each
    in ``[lo, hi]``."""
    items = v.split(",") if isinstance(v, str) else (list(v) if isinstance(v, (list, tuple))
                                                      else [v])
    if not items or any(isinstance(x, str) and not x.strip() for x in items):
        raise ValueError(f"{name} must be a number or comma-separated numbers, got {v!r}")
    out = []
    for x in items:
        try:
            out.append(number(name, x, lo=lo, hi=hi))
        except ValueError:
            raise ValueError(f"{name} must be finite numbers"
                             + ("" if lo is None else f" in [{lo:g}, {hi:g}]")
                             + f", got {v!r}") from None
    return out


def not_applicable(name: str, value, applies_to: str, here: str):
    """Refuse an argument that the request would ignore: ``name`` is used only with
    ``applies_to``, and the request is ``here``."""
    raise ValueError(f"{name} applies only to {applies_to}, not to {here} (got {name} = "
                     f"{value!r}; drop it)")


# --------------------------------------------------------------------------------------
# The machine: memory and disk
# --------------------------------------------------------------------------------------

def human_bytes(n: float) -> str:
    """``1.5e9`` -> ``"1.5 GB"`` (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return f"{n:.3g} PB"  # pragma: no cover


def _cgroup_room() -> Optional[int]:
    """Memory left under this process's cgroup limit (v2, then v1), or None without one."""
    for limit_f, usage_f in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                             ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                              "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_f) as f:
                limit = f.read().strip()
            with open(usage_f) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2 ** 60:
            return max(0, int(limit) - usage)
    return None


def _device_type(device) -> str:
    """``torch.device(device).type``; the string ``"cpu"`` without importing torch."""
    if isinstance(device, str) and device == "cpu":
        return "cpu"
    return torch.device(device).type


def available_memory(device="cpu") -> Optional[int]:
    """Bytes of memory a new allocation can use on ``device``: for the CPU, ``MemAvailable``
    of /proc/meminfo (or the free physical pages), capped by a cgroup limit; for a CUDA
    device, its free memory. None where the machine does not say."""
    if _device_type(device) == "cuda":
        dev = torch.device(device)
        if not torch.cuda.is_available():
            return None
        return int(torch.cuda.mem_get_info(dev)[0])
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    room = _cgroup_room()
    return avail if room is None else min(avail, room)


def check_memory(nbytes: float, what: str, device="cpu") -> None:
    """Refuse a request whose estimated memory ``nbytes`` (a lower bound of its largest
    allocations) exceeds what ``device`` has available, before any of it is allocated.

    ``what`` names the request in the message, e.g. ``"d = 1e12 (bimodal prior)"``."""
    avail = available_memory(device)
    if avail is None or nbytes <= avail:
        return
    where = "on this machine" if _device_type(device) == "cpu" else f"on {device}"
    raise ValueError(f"{what} needs at least {human_bytes(nbytes)} of memory, but "
                     f"{human_bytes(avail)} is available {where}")


MIN_FREE_DISK = 20 * 10 ** 6       # bytes: a full reproduce writes a few MB of results


def check_writable_dir(path, what: str, min_free: int = MIN_FREE_DISK) -> Path:
    """``path`` as a Path if a folder can be written there: it is a folder (or can be created
    as one: its first existing ancestor is a folder), a file can be created in it and its disk
    has ``min_free`` bytes free. Nothing is left behind (the probe file is removed at once;
    a missing folder is not created)."""
    p = Path(os.path.expanduser(str(path)))
    if not str(path).strip():
        raise ValueError(f"{what} is empty")
    base = p
    while not base.exists():
        if base.parent == base:
            break
        base = base.parent
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} {str(path)!r} is not a folder (a file has that name)")
    if not base.is_dir():
        raise ValueError(f"{what} {str(path)!r} cannot be created: {str(base)!r} is a file")
    try:
        with tempfile.TemporaryFile(dir=base, prefix=".diffrates-probe-"):
            pass
        free = shutil.disk_usage(base).free
    except OSError as exc:
        raise ValueError(f"{what} {str(path)!r} is not writable: "
                         f"{exc.strerror or exc}") from None
    if free < min_free:
        raise ValueError(f"{what} {str(path)!r} is on a full disk: {human_bytes(free)} free, "
                         f"at least {human_bytes(min_free)} needed")
    return p
