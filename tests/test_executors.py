"""Executors: local processes and a real Dask LocalCluster give the serial numbers, and only
the client writes results."""
import os
import pytest
import torch

from experiments.runtime.executors import Executor, parse_executor
from experiments.runtime.store import ResultStore
from experiments.runtime.sweep import run_points

CONFIGS = [{"prior": p, "d": d, "sampler": s, "T": T}
           for p in ("gauss", "bimodal") for d in (1, 3) for s in ("li-ode", "li-sde")
           for T in (20, 40)]


def _values(recs):
    return [(r["config"]["prior"], r["config"]["d"], r["config"]["sampler"], r["config"]["T"],
             r["result"]["value"]) for r in recs]


@pytest.fixture(scope="module")
def serial_values(tmp_path_factory):
    store = ResultStore("serial", tmp_path_factory.mktemp("serial"))
    return _values(run_points(store, CONFIGS, executor="serial"))


def test_local_processes_match_serial(tmp_path, serial_values):
    store = ResultStore("local", tmp_path)
    recs = run_points(store, CONFIGS, executor=Executor("local", max_workers=2))
    assert _values(recs) == serial_values
    assert store.computed == len(CONFIGS)


def test_dask_local_cluster_matches_serial_and_resumes(tmp_path, serial_values):
    pytest.importorskip("distributed")
    store = ResultStore("dask", tmp_path)
    with Executor("dask", max_workers=2) as ex:
        assert ex._dask_client() is not None          # a real LocalCluster
        half = run_points(store, CONFIGS[:5], executor=ex)
        recs = run_points(ResultStore("dask", tmp_path), CONFIGS, executor=ex)
    assert _values(half) == serial_values[:5]
    assert _values(recs) == serial_values
    assert len(list(store.points.glob("*.json"))) == len(CONFIGS)


@pytest.mark.parametrize("spec, expected", [(None, ("local", None)), ("serial", ("serial", None)),
                                            ("dask", ("dask", None)),
                                            ("dask=tcp://h:8786", ("dask", "tcp://h:8786"))])
def test_parse_executor(spec, expected):
    assert parse_executor(spec) == expected


@pytest.mark.parametrize("spec", ["dask=", "mpi", "threads", "", "  "])
def test_parse_executor_rejects(spec):
    with pytest.raises(ValueError):
        parse_executor(spec)


def test_bind_device_spreads_workers_over_gpus():
    """cuda (no index) goes to the worker's own GPU, rank mod the visible count; explicit
    devices and CPU pass through; with one GPU every worker takes cuda:0."""
    from experiments.runtime.executors import bind_device
    assert [bind_device("cuda", rank=r, n_gpus=4) for r in range(6)] == \
        ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert bind_device("cuda:3", rank=1, n_gpus=4) == "cuda:3"
    assert bind_device("cpu", rank=1, n_gpus=4) == "cpu"
    assert bind_device("cuda", rank=5, n_gpus=1) == "cuda:0"


def test_pool_initializer_gives_consecutive_ranks(monkeypatch):
    """Each local worker runs the pool initializer once: ranks 0, 1, ... in start order."""
    import multiprocessing as mp

    import experiments.runtime.executors as ex
    ctx = mp.get_context("spawn")
    counter, lock = ctx.Value("i", 0), ctx.Lock()
    monkeypatch.setattr(ex, "_RANK", None)
    monkeypatch.setenv("DIFFRATES_MEMORY_SHARE", "1")     # restored after the test
    seen = []
    n = torch.get_num_threads()
    try:
        for _ in range(3):
            ex._init_worker(counter, lock, 1, None, 4)
            seen.append(ex.worker_rank())
    finally:
        torch.set_num_threads(n)
    assert seen == [0, 1, 2]
    # each of 4 workers budgets a quarter of the machine's memory
    assert float(os.environ["DIFFRATES_MEMORY_SHARE"]) == 0.25


def test_records_name_the_device_the_worker_used(tmp_path, monkeypatch):
    """The sweep computes a cuda point on the worker's bound device and records it there
    (simulated: bind_device patched, compute only reads the device)."""
    import experiments.runtime.sweep as sweep
    monkeypatch.setattr(sweep, "bind_device", lambda dev: "cuda:1" if dev == "cuda" else dev)
    store = ResultStore("dev", tmp_path)
    recs = run_points(store, [{"device": "cuda", "x": 1}], compute=_echo_device,
                      normalise=None, executor="serial")
    assert recs[0]["result"] == {"device": "cuda:1"}
    assert recs[0]["provenance"]["device"] == "cuda:1"
    assert recs[0]["config"]["device"] == "cuda"          # the cache key keeps "cuda"


def _echo_device(cfg):
    return {"device": cfg["device"]}
