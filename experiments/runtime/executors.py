"""Where the points of a sweep are computed: in this process, in local processes, or on Dask.

``--executor local`` (default) uses processes up to the core count; ``--executor dask`` starts
a ``dask.distributed.LocalCluster``; ``--executor dask=tcp://host:8786`` connects to a running
scheduler (for SLURM/PBS, start one with ``dask-jobqueue``: see the README). Workers only
compute; the client process alone writes results, so the cache and resume behave the same
with every executor. The compute function must be importable (a module-level function).

One :class:`Executor` can serve several sweeps (``diffrates reproduce`` passes one to every
experiment): its process pool or Dask cluster is started on first use and kept until
:meth:`Executor.close`, so workers import torch once, not once per experiment.

**GPUs.** A configuration whose ``device`` is ``cuda`` (no index) is bound, in the worker
that computes it, to one GPU of that worker: local worker ``r`` (its rank, 0, 1, ...) and
Dask worker ``r`` (the integer in its name) take
``cuda:(r mod number of visible GPUs)``, so workers on a multi-GPU machine spread over the
devices instead of all landing on ``cuda:0``. The record's provenance names the device used;
the configuration (and so the cache key) keeps ``cuda``.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor, as_completed

__all__ = ["Executor", "make_executor", "parse_executor", "bind_device", "worker_rank"]

_RANK = None          # this process's worker rank (local pool workers), set at start


def _init_worker(counter, lock, threads):
    """Start of a local pool worker: its rank, and ``threads`` intra-op threads (the pool
    already uses the cores; more threads per worker would oversubscribe them)."""
    global _RANK
    with lock:
        _RANK = counter.value
        counter.value += 1
    import torch
    torch.set_num_threads(threads)


def worker_rank() -> int:
    """Rank of the worker this runs in: the local pool's start order; for a Dask worker the
    integer in its name (LocalCluster names its workers 0, 1, ...; dask-jobqueue appends one);
    0 in the client process."""
    if _RANK is not None:
        return _RANK
    try:
        from distributed import get_worker
        name = str(get_worker().name)
    except (ImportError, ValueError):
        return 0
    digits = re.findall(r"\d+", name)
    return int(digits[-1]) if digits else 0


def bind_device(device: str, rank: int | None = None, n_gpus: int | None = None) -> str:
    """The device a worker should use for a configuration's ``device``: ``cuda`` becomes
    ``cuda:(rank mod n_gpus)`` (``n_gpus``: the visible CUDA devices); anything else,
    ``cuda:N`` included, is returned unchanged."""
    if device != "cuda":
        return device
    if n_gpus is None:
        import torch
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpus <= 1:
        return "cuda:0" if n_gpus == 1 else device
    r = worker_rank() if rank is None else rank
    return f"cuda:{r % n_gpus}"


def parse_executor(spec: str | None):
    """``None``/``local``/``serial``/``dask``/``dask=ADDRESS`` -> (kind, address)."""
    spec = (spec or "local").strip()
    if spec in ("local", "serial"):
        return spec, None
    if spec == "dask":
        return "dask", None
    if spec.startswith("dask="):
        addr = spec[len("dask="):]
        if not addr:
            raise ValueError("--executor dask=ADDRESS needs an address, e.g. tcp://host:8786")
        return "dask", addr
    raise ValueError(f"unknown executor {spec!r}; use local, serial, dask or dask=ADDRESS")


class Executor:
    """Maps a function over configurations and yields ``(index, result)`` as they finish."""

    def __init__(self, spec: str | None = None, max_workers: int | None = None):
        self.kind, self.address = parse_executor(spec)
        self.max_workers = max_workers or os.cpu_count() or 1
        self._client = self._cluster = self._pool = None

    def imap(self, fn, items):
        items = list(items)
        if not items:
            return
        if self.kind == "serial" or (self.kind == "local" and
                                     (self.max_workers == 1 or len(items) == 1)):
            for i, it in enumerate(items):
                yield i, fn(it)
            return
        if self.kind == "local":
            pool = self._local_pool()
            futs = {pool.submit(fn, it): i for i, it in enumerate(items)}
            try:
                for f in as_completed(futs):
                    yield futs[f], f.result()
            finally:                       # an interrupted sweep leaves no queued work behind
                for f in futs:
                    f.cancel()
            return
        client = self._dask_client()
        from distributed import as_completed as dask_completed
        futs = client.map(fn, items, pure=False)
        index = {f.key: i for i, f in enumerate(futs)}
        for f in dask_completed(futs):
            yield index[f.key], f.result()

    def _local_pool(self):
        if self._pool is None:
            import multiprocessing as mp
            ctx = mp.get_context("spawn")
            counter, lock = ctx.Value("i", 0), ctx.Lock()
            threads = max(1, (os.cpu_count() or 1) // self.max_workers)
            self._pool = ProcessPoolExecutor(max_workers=self.max_workers, mp_context=ctx,
                                             initializer=_init_worker,
                                             initargs=(counter, lock, threads))
        return self._pool

    def _dask_client(self):
        if self._client is None:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise ValueError("the dask executor needs dask.distributed: "
                                 "pip install 'dask[distributed]'") from None
            if self.address:
                self._client = Client(self.address)
            else:
                self._cluster = LocalCluster(n_workers=min(self.max_workers, 4),
                                             threads_per_worker=1, processes=True,
                                             dashboard_address=None)
                self._client = Client(self._cluster)
        return self._client

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_executor(spec: str | None = None, max_workers: int | None = None) -> Executor:
    return Executor(spec, max_workers)
