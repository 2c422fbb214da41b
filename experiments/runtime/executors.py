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

import itertools
import os
import re
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait

__all__ = ["Executor", "make_executor", "parse_executor", "bind_device", "worker_rank",
           "check_scheduler", "CONNECT_TIMEOUT_S"]

_RANK = None          # this process's worker rank (local pool workers), set at start
CONNECT_TIMEOUT_S = 3.0     # a Dask scheduler must answer within this (else: one line)
PARENT_POLL_S = 0.5         # how often a pool worker checks that its parent is alive
_END = object()


def _init_worker(counter, lock, threads, parent=None, workers=1):
    """Start of a local pool worker: its rank, ``threads`` intra-op threads (the pool
    already uses the cores; more threads per worker would oversubscribe them), its share of
    the machine's memory (``DIFFRATES_MEMORY_SHARE`` = 1 / ``workers``, read by memory budgets
    such as :func:`theory.lowrank.operators.dense_budget`), and, given the ``parent`` pid, a
    watchdog that ends the worker when its parent dies."""
    global _RANK
    os.environ["DIFFRATES_MEMORY_SHARE"] = repr(1.0 / max(1, int(workers)))
    if parent is not None:
        _exit_with_parent(parent)
    with lock:
        _RANK = counter.value
        counter.value += 1
    import torch
    torch.set_num_threads(threads)


def _exit_with_parent(parent: int, interval: float = PARENT_POLL_S) -> None:
    """A daemon thread that ends this process (``os._exit``) once ``parent`` is no longer
    its parent: a client killed with ``kill -9`` leaves no worker behind (the workers hold
    the resource tracker's pipe, so it exits with them)."""
    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="diffrates-parent-watch", daemon=True).start()


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse (ValueError, one line) a Dask scheduler address that does not accept a TCP
    connection within ``timeout`` seconds (``tcp://`` and ``tls://`` addresses, or a bare
    ``host:port``; other transports are left to the client)."""
    scheme, sep, rest = address.rpartition("://")
    if sep and scheme not in ("tcp", "tls"):
        return
    host, colon, port = rest.rpartition(":")
    host = host.strip("[]")                          # [::1]:8786
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Dask scheduler address {address!r} needs a host and a port, e.g. "
                         "tcp://host:8786")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ValueError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s: "
                         f"{why}") from None


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
    if spec is None:
        return "local", None
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty executor {spec!r}; use local, serial, dask or dask=ADDRESS")
    spec = spec.strip()
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


def _connect(client_cls, address: str):
    """A Dask client of the scheduler at ``address``; a failed handshake (something else
    answers there: an HTTP server's reply is read as a frame length, hence MemoryError) is
    one line."""
    try:
        return client_cls(address, timeout=10 * CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, MemoryError) as exc:
        text = " ".join(str(exc).split())[:160]
        raise ValueError(f"cannot connect to a Dask scheduler at {address}: the handshake "
                         f"failed ({type(exc).__name__}{': ' + text if text else ''}); is it "
                         "a Dask scheduler's address?") from None


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

    def stream(self, fn, source, window: int | None = None, inline: bool = False):
        """Like :meth:`imap` for items drawn from the iterator ``source`` only as workers free
        up (at most ``window`` in flight, default two per worker): yields ``(item,
        fn(item))`` as they finish. ``inline``: compute in this process (one item)."""
        source = iter(source)
        if self.kind == "serial" or inline or (self.kind == "local" and self.max_workers == 1):
            for it in source:
                yield it, fn(it)
            return
        window = window or 2 * self.max_workers
        if self.kind == "local":
            pool = self._local_pool()
            futs = {pool.submit(fn, it): it for it in itertools.islice(source, window)}
            try:
                while futs:
                    done, _ = wait(futs, return_when=FIRST_COMPLETED)
                    for f in done:
                        yield futs.pop(f), f.result()
                        nxt = next(source, _END)
                        if nxt is not _END:
                            futs[pool.submit(fn, nxt)] = nxt
            finally:                       # an interrupted sweep leaves no queued work behind
                for f in futs:
                    f.cancel()
            return
        client = self._dask_client()
        from distributed import as_completed as dask_completed
        items, queue = {}, dask_completed()
        for it in itertools.islice(source, window):
            f = client.submit(fn, it, pure=False)
            items[f.key] = it
            queue.add(f)
        for f in queue:
            yield items.pop(f.key), f.result()
            nxt = next(source, _END)
            if nxt is not _END:
                g = client.submit(fn, nxt, pure=False)
                items[g.key] = nxt
                queue.add(g)

    def check(self) -> "Executor":
        """Up-front checks (before any computing): Dask is installed where it is asked for,
        and a given scheduler answers within CONNECT_TIMEOUT_S."""
        if self.kind == "dask":
            if self.address:
                check_scheduler(self.address)
            try:
                from distributed import Client
            except ImportError:
                raise ValueError("the dask executor needs dask.distributed: "
                                 "pip install 'dask[distributed]'") from None
            if self.address:
                self._client = _connect(Client, self.address)   # kept for the sweeps
        return self

    def _local_pool(self):
        if self._pool is None:
            import multiprocessing as mp
            ctx = mp.get_context("spawn")
            counter, lock = ctx.Value("i", 0), ctx.Lock()
            threads = max(1, (os.cpu_count() or 1) // self.max_workers)
            self._pool = ProcessPoolExecutor(max_workers=self.max_workers, mp_context=ctx,
                                             initializer=_init_worker,
                                             initargs=(counter, lock, threads, os.getpid(),
                                                       self.max_workers))
        return self._pool

    def _dask_client(self):
        if self._client is None:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise ValueError("the dask executor needs dask.distributed: "
                                 "pip install 'dask[distributed]'") from None
            if self.address:
                check_scheduler(self.address)
                self._client = _connect(Client, self.address)
            else:
                n = min(self.max_workers, 4)
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1,
                                             processes=True, dashboard_address=None,
                                             env={"DIFFRATES_MEMORY_SHARE": repr(1.0 / n)})
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
