"""Results on disk: one JSON file per computed point, keyed by its configuration.

* A point's file name is a hash of its configuration, so a rerun finds what was finished
  and recomputes nothing (an interrupted run resumes where it stopped).
* Files are written atomically (a temporary file with a unique name in the same folder, then
  ``os.replace``): an interrupted write leaves no corrupt file, and concurrent writers never
  share a temporary file.
* Every record carries its configuration, seed, the versions of the software, the device,
  the time it took, and ``digest``: the SHA-256 of its canonical configuration and result
  (:func:`record_digest`). A file that does not verify (unreadable, binary, truncated, not a
  JSON object, a key missing, a value edited, another configuration) is named in one warning
  line on stderr and recomputed; nothing unverified is reused.
* One lock per point (:class:`PointLock`, ``flock`` on ``<hash>.lock`` beside the point):
  the run that holds it computes the point; another run that needs the same point waits for
  it and reuses the file. The kernel drops the lock of a process that dies, so a killed run
  leaves no stale lock.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

try:                       # POSIX; elsewhere points are not locked (one run at a time)
    import fcntl
except ImportError:        # pragma: no cover
    fcntl = None

__all__ = ["ResultStore", "PointLock", "provenance", "config_key", "record_digest",
           "atomic_write_json", "atomic_write_text", "default_root"]


def default_root() -> Path:
    return Path(os.environ.get("DIFFRATES_RESULTS", "results"))


def config_key(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def record_digest(config, result) -> str:
    """SHA-256 (hex) of the canonical JSON of ``{"config": config, "result": result}``
    (sorted keys, no spaces): what a point file must carry as ``digest`` to be reused."""
    blob = json.dumps({"config": config, "result": result}, sort_keys=True,
                      separators=(",", ":"), default=float)
    return hashlib.sha256(blob.encode()).hexdigest()


def _torch_version() -> str:
    """torch's version without importing it (a second of start-up on the numpy-only paths):
    the loaded module's where it is loaded, else the installed distribution's metadata (the
    same string, e.g. ``2.13.0+cpu``)."""
    if "torch" in sys.modules:
        return str(sys.modules["torch"].__version__)
    try:
        from importlib.metadata import version
        return version("torch")
    except Exception:  # pragma: no cover - torch importable without metadata
        import torch
        return str(torch.__version__)


def provenance(device: str = "cpu") -> dict:
    import numpy
    import scipy
    try:
        from importlib.metadata import version
        ours = version("diffrates")
    except Exception:  # pragma: no cover - running from a source tree
        ours = "source"
    return {"diffrates": ours, "python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "torch": _torch_version(), "device": device,
            "host": platform.node(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold SIGINT and SIGTERM back until the block ends, then deliver them to the handlers
    that were in place. A Ctrl-C between creating the temporary file and the ``try`` that
    removes it (or inside ``tempfile.mkstemp``, after its ``open``) left an empty
    ``.tmp-*.json`` beside the points (seen once in tests/test_resume.py under load).
    A temporary handler, not a signal mask: in a process with other threads (torch's, the
    executor's) a masked signal is delivered to another thread and Python still raises it
    in the main thread. Python runs handlers only in the main thread, so other threads need
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    kinds = (signal.SIGINT, signal.SIGTERM)
    previous = {k: signal.signal(k, lambda num, frame: caught.append(num)) for k in kinds}
    try:
        yield
    finally:
        for k, h in previous.items():
            signal.signal(k, signal.SIG_DFL if h is None else h)
        for num in caught[:1]:
            signal.raise_signal(num)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a uniquely named temporary file in the same folder,
    flushed to disk, then renamed over ``path``; interrupts wait until the file is in place
    or removed (milliseconds)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _interrupts_deferred():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=float))


def _canonical(obj):
    """``obj`` as it reads back from JSON (tuples become lists, numpy floats floats)."""
    return json.loads(json.dumps(obj, default=float))


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"diffrates: warning: {message}", file=sys.stderr, flush=True)


class PointLock:
    """An exclusive lock on one point: ``flock`` on ``path``, removed on release.

    Acquiring checks that the file locked is still the one at ``path`` (its holder removes it
    when it releases), so a waiter never holds a lock on a file that was removed meanwhile.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, blocking: bool = True) -> bool:
        if fcntl is None:  # pragma: no cover
            self._fd = -1
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                st, here = os.fstat(fd), os.stat(self.path)
                same = (st.st_ino, st.st_dev) == (here.st_ino, here.st_dev)
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)          # released and removed while we waited: lock the new file

    def release(self) -> None:
        if self._fd is None:
            return
        if self._fd >= 0:
            try:
                os.unlink(self.path)        # while still held: nobody can lock this file
            except FileNotFoundError:
                pass
            finally:
                os.close(self._fd)
        self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class ResultStore:
    """Cache of computed points for one experiment under ``root/experiment/points``."""

    def __init__(self, experiment: str, root=None):
        self.root = Path(root) if root is not None else default_root()
        self.dir = self.root / experiment
        self.points = self.dir / "points"
        self.computed = 0
        self.reused = 0
        self.unverified = 0            # point files that did not verify (named: the first few)

    def path_for(self, config: dict) -> Path:
        return self.points / f"{config_key(config)}.json"

    def lock_for(self, config: dict) -> PointLock:
        return PointLock(self.points / f"{config_key(config)}.lock")

    def try_lock(self, config: dict):
        """The point's lock if no other run holds it (else None)."""
        lock = self.lock_for(config)
        return lock if lock.acquire(blocking=False) else None

    def load(self, config: dict, warn_bad: bool = True):
        """The verified record of ``config``, or None (missing, or not verified: then one
        warning line names the file and why, unless ``warn_bad`` is False)."""
        p = self.path_for(config)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._bad(p, f"cannot be read ({exc.strerror or exc})", warn_bad)
        problem, rec = _verify(raw, config)
        return self._bad(p, problem, warn_bad) if problem else rec

    # point files named one per line; past that, one line says the rest are recomputed too
    # (an old cache written before digests would otherwise print a line per point)
    NAMED_WARNINGS = 5

    def _bad(self, path, reason, warn_bad):
        if warn_bad:
            self.unverified += 1
            if self.unverified <= self.NAMED_WARNINGS:
                warn(f"cached point {path} {reason}; recomputing it")
            elif self.unverified == self.NAMED_WARNINGS + 1:
                warn(f"more cached points under {self.points} do not verify; recomputing them "
                     "too (not named one by one)")
        return None

    def save(self, config: dict, result, seconds: float, device: str = "cpu") -> dict:
        """Write one finished point (atomically, with its digest) and return its record."""
        rec = _canonical({"config": config, "result": result, "seconds": seconds,
                          "provenance": provenance(device)})
        rec["digest"] = record_digest(rec["config"], rec["result"])
        atomic_write_json(self.path_for(config), rec)
        self.computed += 1
        return rec

    def get_or_compute(self, config: dict, compute, device: str = "cpu") -> dict:
        rec = self.load(config)
        if rec is not None:
            self.reused += 1
            return rec
        with self.lock_for(config):
            rec = self.load(config, warn_bad=False)       # finished by another run meanwhile
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


def _verify(raw: bytes, config: dict):
    """``(problem, record)``: ``problem`` is None for a record that verifies, else the words
    that say what is wrong with the file."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "is not text (binary content)", None
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"is not complete JSON (truncated or corrupt: {exc.msg} at character {exc.pos})", None
    if not isinstance(rec, dict):
        kind = "null" if rec is None else f"a JSON {type(rec).__name__}"
        return f"holds {kind}, not a point record", None
    missing = [k for k in ("config", "result", "digest") if k not in rec]
    if missing:
        return "has no " + " and no ".join(repr(k) for k in missing), None
    if rec["digest"] != record_digest(rec["config"], rec["result"]):
        return "does not match its digest (edited or corrupt)", None
    if rec["config"] != _canonical(config):
        return "holds another configuration", None
    return None, rec
