"""Run a list of configurations through the result store, with a progress bar.

Finished points are read from the store; the missing ones are computed by the executor
(this process, local processes or Dask workers) and written by this process as each one
finishes, so an interrupted sweep resumes where it stopped.
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
    bar = tqdm(total=len(configs), initial=len(configs) - n_missing, desc=desc, unit="pt",
               file=sys.stderr, dynamic_ncols=True, disable=None)
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
