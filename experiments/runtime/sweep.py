"""Run a list of configurations through the result store, with progress on any output.

Finished points are read from the store; the missing ones are computed by the executor
(this process, local processes or Dask workers) and written by this process as each one
finishes, so an interrupted sweep resumes where it stopped. Each point is computed under its
lock, so concurrent runs of one sweep share the work and compute every point once.

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
    fn, cfgs = args[:2]
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


CLAIM_MAX = 256                  # point locks held at once
POLL_S = 0.2                     # how often a run waiting for another run's points looks


def run_points(store: ResultStore, configs, desc: str = "points", compute=measure,
               executor: Executor | str | None = "serial", normalise=normalise_config,
               group_key=law_sharing_key) -> list:
    """Compute (or reuse) every configuration; returns the records in order.

    Missing points are grouped by ``group_key`` (one task per group, computed in order in
    one worker, so that memoised laws are shared). ``compute`` must be a module-level
    function (it may run in another process). ``normalise=None`` takes the configurations
    as they are (experiments with their own configuration format).

    A group's points are claimed (their locks taken, :meth:`ResultStore.try_lock`) only when
    a worker is free for it, so concurrent runs of one sweep share the work: a point another
    run holds is waited for and read from its file, and every point is computed once; the
    points of a run that dies are computed by the runs still going.
    """
    configs = [dict(c) if normalise is None else normalise(c) for c in configs]
    records = [store.load(c) for c in configs]
    store.reused += sum(r is not None for r in records)
    pending = [i for i, r in enumerate(records) if r is None]
    own = not isinstance(executor, Executor)
    ex = Executor(executor) if own else executor
    bar = progress(len(configs), len(configs) - len(pending), desc)
    held: dict = {}
    try:
        while pending:
            groups: dict = {}
            for i in pending:
                groups.setdefault(group_key(configs[i]), []).append(i)
            deferred: list = []
            jobs = _claimed_jobs(store, configs, records, groups.values(), held, deferred,
                                 compute, bar)
            for (_, _, idx), results in ex.stream(_timed_group, jobs, inline=len(groups) == 1):
                for i, (result, seconds, device) in zip(idx, results):
                    records[i] = store.save(configs[i], result, seconds, device)
                    held.pop(i).release()
                    bar.update(1)
            if deferred and len(deferred) == len(pending):
                time.sleep(POLL_S)          # every missing point is another run's: wait
            pending = deferred
    finally:
        for lock in held.values():
            lock.release()
        bar.close()
        if own:
            ex.close()
    return records


def _claimed_jobs(store, configs, records, groups, held, deferred, compute, bar):
    """One job ``(compute, configs, indices)`` per group, drawn lazily: the points of a group
    are locked when its job is drawn; a point another run holds goes to ``deferred``, one it
    finished meanwhile is read."""
    for idx in groups:
        mine = []
        for i in idx:
            lock = None if len(held) >= CLAIM_MAX else store.try_lock(configs[i])
            if lock is None:                    # another run is computing it (or too many)
                deferred.append(i)
                continue
            rec = store.load(configs[i], warn_bad=False)
            if rec is not None:                 # finished by another run since we looked
                lock.release()
                records[i] = rec
                store.reused += 1
                bar.update(1)
                continue
            held[i] = lock
            mine.append(i)
        if mine:
            yield compute, [configs[i] for i in mine], mine
