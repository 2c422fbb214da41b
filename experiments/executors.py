"""Where the points of a sweep are computed: in this process, in local processes, or on Dask.

``--executor local`` (default) uses processes up to the core count; ``--executor dask`` starts
a ``dask.distributed.LocalCluster``; ``--executor dask=tcp://host:8786`` connects to a running
scheduler (for SLURM/PBS, start one with ``dask-jobqueue``: see the README). Workers only
compute; the client process alone writes results, so the cache and resume behave the same
with every executor. The compute function must be importable (a module-level function).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed

__all__ = ["Executor", "make_executor", "parse_executor"]


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
        self._client = self._cluster = None

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
            import multiprocessing as mp
            with ProcessPoolExecutor(max_workers=min(self.max_workers, len(items)),
                                     mp_context=mp.get_context("spawn")) as pool:
                futs = {pool.submit(fn, it): i for i, it in enumerate(items)}
                for f in as_completed(futs):
                    yield futs[f], f.result()
            return
        client = self._dask_client()
        from distributed import as_completed as dask_completed
        futs = client.map(fn, items, pure=False)
        index = {f.key: i for i, f in enumerate(futs)}
        for f in dask_completed(futs):
            yield index[f.key], f.result()

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
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_executor(spec: str | None = None, max_workers: int | None = None) -> Executor:
    return Executor(spec, max_workers)
