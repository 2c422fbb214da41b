"""Run a list of configurations through the result store, with a progress bar.

Finished points are read from the store; the missing ones are computed by the executor
(this process, local processes or Dask workers) and written by this process as each one
finishes, so an interrupted sweep resumes where it stopped. Each point is computed under its
lock, so concurrent runs of one sweep share the work and compute every point once.
"""
from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

from .executors import Executor, bind_device
from ..points.measure import measure, normalise_config
from .store import ResultStore

__all__ = ["run_points"]


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
    bar = tqdm(total=len(configs), initial=len(configs) - len(pending), desc=desc, unit="pt",
               file=sys.stderr, dynamic_ncols=True, disable=None)
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
