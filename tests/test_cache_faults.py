"""Faults of the result cache and of the processes around it (issue 13).

* A point file that does not verify (edited value, null, a list, a key missing, truncated,
  empty, binary, another configuration) is recomputed, with exactly one warning line that
  names the file; the recomputed value is the true one, also in summary.json.
* Point locks: one holder at a time; a released or stale lock file does not block.
* Four concurrent runs of one study (real processes): all succeed, every point is computed
  once, the figure and the summary are whole.
* ``kill -9`` of a real ``diffrates run`` with pool workers leaves no process behind (its
  workers watch their parent; the resource tracker exits with them).

Cost: about 25 s (the subprocess tests: 4 interpreters importing torch, and a real run).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import concurrent_study
from experiments.runtime.store import PointLock, ResultStore, record_digest
from experiments.runtime.study import run_study
from experiments.runtime.sweep import run_points

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [{"x": 3}, {"x": 4}]


def _rec(raw):
    return json.loads(raw)


def _drop(key):
    def f(raw):
        rec = _rec(raw)
        del rec[key]
        return json.dumps(rec).encode()
    return f


def _edited(raw):                       # another value, the old digest
    rec = _rec(raw)
    rec["result"]["value"] = 123.0
    return json.dumps(rec).encode()


def _edited_and_redigested_config(raw):  # a consistent record of another configuration
    rec = _rec(raw)
    rec["config"] = {"x": 5}
    rec["digest"] = record_digest(rec["config"], rec["result"])
    return json.dumps(rec).encode()


CORRUPTIONS = {
    "edited value": (_edited, "does not match its digest"),
    "null": (lambda raw: b"null", "holds null, not a point record"),
    "a list": (lambda raw: b"[1, 2, 3]", "holds a JSON list"),
    "a string": (lambda raw: b'"9.0"', "holds a JSON str"),
    "no result": (_drop("result"), "has no 'result'"),
    "no digest": (_drop("digest"), "has no 'digest'"),
    "no config": (_drop("config"), "has no 'config'"),
    "truncated": (lambda raw: raw[: len(raw) // 2], "is not complete JSON"),
    "empty": (lambda raw: b"", "is not complete JSON"),
    "binary": (lambda raw: bytes(range(256)) * 8, "is not text (binary content)"),
    "another configuration": (_edited_and_redigested_config, "holds another configuration"),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_point_that_does_not_verify_is_recomputed_with_one_warning(kind, tmp_path, capsys):
    corrupt, reason = CORRUPTIONS[kind]
    store = ResultStore("t", tmp_path)
    first = run_points(store, CONFIGS, compute=concurrent_study.compute, normalise=None)
    assert [r["result"]["value"] for r in first] == [9.0, 16.0]
    path = store.path_for(CONFIGS[0])
    path.write_bytes(corrupt(path.read_bytes()))
    capsys.readouterr()
    calls = []

    def counting(cfg):
        calls.append(cfg["x"])
        return concurrent_study.compute(cfg)

    again = ResultStore("t", tmp_path)
    recs = run_points(again, CONFIGS, compute=counting, normalise=None)
    err = _warnings(capsys.readouterr().err)
    assert calls == [3] and again.computed == 1 and again.reused == 1
    assert [r["result"]["value"] for r in recs] == [9.0, 16.0]
    assert len(err) == 1 and str(path) in err[0] and reason in err[0], err
    assert err[0].startswith("diffrates: warning:") and "recomputing" in err[0]
    assert again.load(CONFIGS[0])["result"]["value"] == 9.0       # the new file verifies
    assert capsys.readouterr().err == ""


def test_an_edited_value_does_not_reach_the_summary(tmp_path, capsys):
    """The issue's case: a point file edited to another value flowed into summary.json."""
    res, figs = tmp_path / "r", tmp_path / "f"
    truth = sum(float(x) ** 2 for x in range(concurrent_study.N_POINTS))
    assert run_study(concurrent_study, root=res, figures_dir=figs,
                     executor="serial")["total"] == truth
    store = ResultStore(concurrent_study.NAME, res)
    path = store.path_for({"x": 7})
    path.write_bytes(_edited(path.read_bytes()))
    capsys.readouterr()
    summary = run_study(concurrent_study, root=res, figures_dir=figs, executor="serial")
    assert summary["total"] == truth and summary["computed"] == 1
    on_disk = json.loads((res / concurrent_study.NAME / "summary.json").read_text())
    assert on_disk["values"][7] == 49.0 and on_disk["total"] == truth
    assert len(_warnings(capsys.readouterr().err)) == 1


def _warnings(err: str) -> list:
    """The lines of stderr that are not the sweep's progress lines (``NAME: ...points``)."""
    return [line for line in err.strip().splitlines()
            if not re.match(r"^\S+: \d+( of |/)\d+ points\b", line)]


def test_point_lock_has_one_holder_and_stale_files_do_not_block(tmp_path):
    a, b = PointLock(tmp_path / "p.lock"), PointLock(tmp_path / "p.lock")
    assert a.acquire(blocking=False) and a.held
    assert not b.acquire(blocking=False)          # flock: one holder (any process)
    a.release()
    assert not (tmp_path / "p.lock").exists()     # removed on release
    assert b.acquire(blocking=False)
    b.release()
    (tmp_path / "p.lock").write_text("")          # left by a killed run: nobody holds it
    assert a.acquire(blocking=False)
    a.release()


def _env(**extra):
    return dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
                MPLBACKEND="Agg", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)


RUN_ONE = ("import json, sys, concurrent_study; "
           "from experiments.runtime.study import run_study; "
           "s = run_study(concurrent_study, root=sys.argv[1], figures_dir=sys.argv[2], "
           "executor='serial'); "
           "print(json.dumps({k: s[k] for k in ('computed', 'reused', 'total', 'figure')}))")


def test_four_concurrent_runs_all_succeed_and_compute_each_point_once(tmp_path):
    res, figs, log = tmp_path / "r", tmp_path / "f", tmp_path / "log"
    env = _env(DIFFRATES_TEST_LOG=str(log), DIFFRATES_TEST_SLEEP="0.3")
    procs = [subprocess.Popen([sys.executable, "-c", RUN_ONE, str(res), str(figs)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e[-2000:] for _, e in outs]
    summaries = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    computed = [line.split()[1] for line in log.read_text().splitlines()]
    n = concurrent_study.N_POINTS
    assert sorted(computed, key=int) == [str(x) for x in range(n)]       # each point once
    assert sum(s["computed"] for s in summaries) == n
    assert all(s["computed"] + s["reused"] == n for s in summaries)
    truth = sum(float(x) ** 2 for x in range(n))
    assert all(s["total"] == truth for s in summaries)
    assert Path(summaries[0]["figure"]).stat().st_size > 1000
    leftovers = [p.name for p in (res / "concurrent" / "points").iterdir()
                 if not p.name.endswith(".json") or p.name.startswith(".")]
    assert leftovers == [] and not list(figs.glob(".tmp-*"))
    assert json.loads((res / "concurrent" / "summary.json").read_text())["total"] == truth


def _children(pid):
    """Pids whose parent is ``pid`` (from /proc)."""
    out = []
    for st in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = st.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(st.parent.name))
    return out


def _alive(pid):
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_kill_9_of_a_run_leaves_no_process_behind(tmp_path):
    res, figs = tmp_path / "r", tmp_path / "f"
    args = [sys.executable, "-m", "experiments.cli.main", "run", "dpnp-eta-bias", "--fast",
            "--executor", "local", "--results", str(res), "--figures", str(figs)]
    proc = subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    t0, workers = time.time(), []
    while time.time() - t0 < 240 and proc.poll() is None:
        kids = _children(proc.pid)
        workers = [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
        if len(workers) >= 2 and list(res.glob("*/points/*.lock")):   # computing points
            break
        time.sleep(0.2)
    assert proc.poll() is None and len(workers) >= 2, "the run did not start its pool"
    family = _children(proc.pid)                  # workers and the resource tracker
    family += [g for k in family for g in _children(k)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    t0 = time.time()
    while any(_alive(p) for p in family) and time.time() - t0 < 15:
        time.sleep(0.2)
    assert not [p for p in family if _alive(p)], "processes left behind after kill -9"


def test_an_old_cache_is_named_in_a_few_lines_and_recomputed(tmp_path, capsys):
    """Eight point files without a digest (an old cache): the first five are named, one line
    says the rest are recomputed too, and all eight are computed again (the total is right)."""
    res, figs = tmp_path / "r", tmp_path / "f"
    truth = sum(float(x) ** 2 for x in range(concurrent_study.N_POINTS))
    run_study(concurrent_study, root=res, figures_dir=figs, executor="serial")
    store = ResultStore(concurrent_study.NAME, res)
    for x in range(8):
        path = store.path_for({"x": x})
        rec = json.loads(path.read_text())
        del rec["digest"]
        path.write_text(json.dumps(rec))
    capsys.readouterr()
    summary = run_study(concurrent_study, root=res, figures_dir=figs, executor="serial")
    warned = _warnings(capsys.readouterr().err)
    assert summary["total"] == truth and summary["computed"] == 8
    assert len(warned) == ResultStore.NAMED_WARNINGS + 1, warned
    assert all("no 'digest'" in w for w in warned[:-1]) and "not named one by one" in warned[-1]
