"""Executors: local processes and a real Dask LocalCluster give the serial numbers, and only
the client writes results."""
import pytest

from experiments.executors import Executor, parse_executor
from experiments.store import ResultStore
from experiments.sweep import run_points

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


@pytest.mark.parametrize("spec", ["dask=", "mpi", "threads"])
def test_parse_executor_rejects(spec):
    with pytest.raises(ValueError):
        parse_executor(spec)
