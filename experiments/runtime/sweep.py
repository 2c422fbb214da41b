"""Run a list of configurations through the result store, with progress on any output.

Finished points are read from the store; the missing ones are computed by the executor
(this process, local processes or Dask workers) and written by this process as each one
finishes, so an interrupted sweep resumes where it stopped.

Progress (:func:`progress`): a bar on a terminal; anywhere else (a log file, a notebook, a
batch job) one line at the start and one every ``DIFFRATES_PROGRESS_INTERVAL`` seconds
(default 30) while points are computed, whether or not one finished, and one at the end.
A sweep with nothing to compute prints nothing.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from tqdm import tqdm

from .executors import Executor, bind_device
from ..points.measure import measure, normalise_config
from .store import ResultStore

__all__ = ["run_points", "progress", "PROGRESS_INTERVAL"]

PROGRESS_INTERVAL = 30.0          # seconds between progress lines off a terminal


class _Quiet:
    """Progress of a sweep with nothing to compute: says nothing."""

    def update(self, n=1):
        pass

    def close(self):
        pass


class _LineProgress:
    """One line every ``interval`` seconds from a timer thread (so that a point that takes
    minutes still shows the sweep is alive), plus a first and a last line."""

    def __init__(self, total, initial, desc, stream, interval):
        self.total, self.done, self.start_done = total, initial, initial
        self.desc, self.stream, self.interval = desc, stream, interval
        self.t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._say(f"{total - initial} of {total} points to compute"
                  + (f" ({initial} cached)" if initial else ""))
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _say(self, text):
        print(f"{self.desc}: {text}", file=self.stream, flush=True)

    def _status(self):
        with self._lock:
            done, computed = self.done, self.done - self.start_done
        elapsed = time.perf_counter() - self.t0
        text = f"{done}/{self.total} points, {computed} computed in {elapsed:.0f} s"
        if 0 < computed < self.total - self.start_done:
            left = elapsed / computed * (self.total - done)
            text += f", about {left:.0f} s left"
        return text

    def _tick(self):
        while not self._stop.wait(self.interval):
            self._say(self._status())

    def update(self, n=1):
        with self._lock:
            self.done += n

    def close(self):
        self._stop.set()
        self._thread.join()
        self._say(self._status() + (" (done)" if self.done == self.total else " (stopped)"))


def progress(total: int, initial: int, desc: str, stream=None, interval=None):
    """Progress of a sweep of ``total`` points of which ``initial`` are cached: an object with
    ``update(n)`` and ``close()``. A tqdm bar when ``stream`` (default stderr) is a terminal;
    otherwise a line every ``interval`` seconds (default ``DIFFRATES_PROGRESS_INTERVAL`` or
    :data:`PROGRESS_INTERVAL`); nothing when no point is to be computed."""
    stream = sys.stderr if stream is None else stream
    if total == initial:
        return _Quiet()
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(total=total, initial=initial, desc=desc, unit="pt", file=stream,
                    dynamic_ncols=True)
    if interval is None:
        interval = float(os.environ.get("DIFFRATES_PROGRESS_INTERVAL", PROGRESS_INTERVAL))
    return _LineProgress(total, initial, desc, stream, interval)


def _timed_group(args):
    """Compute one group of configurations in this worker: ``(result, seconds, device)`` each.
    A configuration on ``cuda`` runs on this worker's own GPU (:func:`bind_device`)."""
    fn, cfgs = args
    out = []
    for cfg in cfgs:
        device = str(cfg.get("device", "cpu"))
        used = bind_device(device)
        t0 = time.perf_counter()
        result = fn(cfg if used == device else {**cfg, "device": used})
        out.append((result, time.perf_counter() - t0, used))
    return out


def law_sharing_key(cfg: dict):
    """Points that differ only in d or metric share their 1-D output laws: one task."""
    return tuple(sorted((k, str(v)) for k, v in cfg.items() if k not in ("d", "metric")))


def run_points(store: ResultStore, configs, desc: str = "points", compute=measure,
               executor: Executor | str | None = "serial", normalise=normalise_config,
               group_key=law_sharing_key) -> list:
    """Compute (or reuse) every configuration; returns the records in order.

    Missing points are grouped by ``group_key`` (one task per group, computed in order in
    one worker, so that memoised laws are shared). ``compute`` must be a module-level
    function (it may run in another process). ``normalise=None`` takes the configurations
    as they are (experiments with their own configuration format).
    """
    configs = [dict(c) if normalise is None else normalise(c) for c in configs]
    records = [store.load(c) for c in configs]
    store.reused += sum(r is not None for r in records)
    groups: dict = {}
    for i, r in enumerate(records):
        if r is None:
            groups.setdefault(group_key(configs[i]), []).append(i)
    tasks = list(groups.values())
    own = not isinstance(executor, Executor)
    ex = Executor(executor) if own else executor
    n_missing = sum(len(t) for t in tasks)
    bar = progress(len(configs), len(configs) - n_missing, desc)
    try:
        jobs = [(compute, [configs[i] for i in idx]) for idx in tasks]
        for j, results in ex.imap(_timed_group, jobs):
            for i, (result, seconds, device) in zip(tasks[j], results):
                records[i] = store.save(configs[i], result, seconds, device)
                bar.update(1)
    finally:
        bar.close()
        if own:
            ex.close()
    return records
