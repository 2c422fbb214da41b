"""Results on disk: one JSON file per computed point, keyed by its configuration.

* A point's file name is a hash of its configuration, so a rerun finds what was finished
  and recomputes nothing (an interrupted run resumes where it stopped).
* Files are written atomically (temporary file in the same folder, then ``os.replace``):
  an interrupted write leaves no corrupt file.
* Every record carries its configuration, seed, the versions of the software, the device
  and the time it took.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

__all__ = ["ResultStore", "provenance", "config_key", "atomic_write_json", "atomic_write_text",
           "default_root"]


def default_root() -> Path:
    return Path(os.environ.get("DIFFRATES_RESULTS", "results"))


def config_key(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def provenance(device: str = "cpu") -> dict:
    import numpy
    import scipy
    import torch
    try:
        from importlib.metadata import version
        ours = version("diffrates")
    except Exception:  # pragma: no cover - running from a source tree
        ours = "source"
    return {"diffrates": ours, "python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "torch": torch.__version__, "device": device,
            "host": platform.node(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def atomic_write_json(path: Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, default=float)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ResultStore:
    """Cache of computed points for one experiment under ``root/experiment/points``."""

    def __init__(self, experiment: str, root=None):
        self.root = Path(root) if root is not None else default_root()
        self.dir = self.root / experiment
        self.points = self.dir / "points"
        self.computed = 0
        self.reused = 0

    def path_for(self, config: dict) -> Path:
        return self.points / f"{config_key(config)}.json"

    def load(self, config: dict):
        p = self.path_for(config)
        if not p.exists():
            return None
        try:
            with open(p) as fh:
                rec = json.load(fh)
        except (OSError, json.JSONDecodeError):
            return None  # unreadable: recompute (atomic writes make this rare)
        return rec if rec.get("config") == json.loads(json.dumps(config, default=str)) else None

    def save(self, config: dict, result, seconds: float, device: str = "cpu") -> dict:
        """Write one finished point (atomically) and return its record."""
        rec = {"config": config, "result": result, "seconds": seconds,
               "provenance": provenance(device)}
        atomic_write_json(self.path_for(config), rec)
        self.computed += 1
        return json.loads(json.dumps(rec, default=float))

    def get_or_compute(self, config: dict, compute, device: str = "cpu") -> dict:
        rec = self.load(config)
        if rec is not None:
            self.reused += 1
            return rec
        t0 = time.perf_counter()
        result = compute()
        return self.save(config, result, time.perf_counter() - t0, device)

    def write_summary(self, summary: dict) -> Path:
        path = self.dir / "summary.json"
        atomic_write_json(path, summary)
        return path
