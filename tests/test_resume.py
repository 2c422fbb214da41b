"""Interrupting a sweep and rerunning it: the rerun recomputes only what had not finished,
and every number equals the one of an uninterrupted run (atomic per-point files).

The command runs in a subprocess and gets SIGINT once some points are on disk, as a user's
Ctrl-C would; the slow test does the same to the whole of ``diffrates reproduce --fast``.
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

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "experiments.cli.main", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupt_after(proc, points_dir: Path, at_least: int, timeout: float = 600):
    """SIGINT ``proc`` once ``points_dir`` holds ``at_least`` finished point files."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        done = len(list(points_dir.glob("*/points/*.json"))) if points_dir.exists() else 0
        if done >= at_least or proc.poll() is not None:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _point_values(results: Path):
    """Every cached point: configuration key -> result (as stored)."""
    out = {}
    for f in results.glob("*/points/*.json"):
        rec = json.loads(f.read_text())
        out[f"{f.parent.parent.name}/{f.name}"] = rec["result"]
    return out


def _counts(stdout):
    """(computed, reused) summed over the experiments a run printed."""
    pairs = re.findall(r"\((\d+) computed, (\d+) reused from cache\)", stdout)
    return sum(int(a) for a, _ in pairs), sum(int(b) for _, b in pairs)


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    # score-error: 32 points of about a second each (dpnp-eta-bias, used before, now computes
    # its 27 points in well under a second, so an interrupt after 6 came when all were done)
    name = "score-error"
    from experiments.runtime import registry
    total = len(registry.get(name).configs(True))
    args = ("run", name, "--fast", "--executor", "local", "--figures", str(tmp_path / "f"))
    broken = tmp_path / "broken"
    code, out, err = _interrupt_after(_cli(*args, "--results", str(broken), cwd=ROOT),
                                      broken, at_least=6)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    finished = _point_values(broken)
    assert 6 <= len(finished) < total
    assert not list(broken.glob("*/points/.tmp-*"))            # no half-written file left
    rerun = _cli(*args, "--results", str(broken), cwd=ROOT)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    computed, reused = _counts(out)
    assert reused == len(finished) and computed + reused == total
    clean_dir = tmp_path / "clean"
    clean = _cli(*args, "--results", str(clean_dir), cwd=ROOT)
    clean.communicate(timeout=600)
    resumed, fresh = _point_values(broken), _point_values(clean_dir)
    assert resumed.keys() == fresh.keys()
    assert all(resumed[k] == fresh[k] for k in fresh)         # identical numbers
    assert all(resumed[k] == finished[k] for k in finished)   # finished points untouched


@pytest.mark.slow
def test_interrupted_reproduce_resumes_without_recomputing(tmp_path):
    """The issue's check on the whole main job: Ctrl-C during ``reproduce --fast``, rerun,
    same numbers as a clean run, nothing finished recomputed."""
    args = ("reproduce", "--fast", "--figures", str(tmp_path / "f"))
    broken = tmp_path / "broken"
    code, _, err = _interrupt_after(_cli(*args, "--results", str(broken), cwd=ROOT), broken,
                                    at_least=120)
    assert code == 130 and "Traceback" not in err
    finished = _point_values(broken)
    rerun = _cli(*args, "--results", str(broken), cwd=ROOT)
    out, err = rerun.communicate(timeout=1200)
    assert rerun.returncode == 0, err
    computed, reused = _counts(out)
    assert reused == len(finished)
    clean_dir = tmp_path / "clean"
    clean = _cli(*args, "--results", str(clean_dir), cwd=ROOT)
    clean.communicate(timeout=1200)
    resumed, fresh = _point_values(broken), _point_values(clean_dir)
    assert resumed.keys() == fresh.keys() and computed + reused == len(fresh)
    assert all(resumed[k] == fresh[k] for k in fresh)


def test_an_interrupt_during_a_point_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    """Ctrl-C arriving right after the temporary file is created (the window that left an
    empty ``.tmp-*.json`` beside the points once): the write completes, then the interrupt
    is raised; nothing but the finished file is in the folder. Another thread is alive, as
    in a real run (torch's, the executor's): a signal mask on the writing thread alone let
    the signal in through it."""
    import tempfile
    import threading

    from experiments.runtime import store

    real = tempfile.mkstemp

    def mkstemp_then_interrupt(*a, **k):
        out = real(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(store.tempfile, "mkstemp", mkstemp_then_interrupt)
    target = tmp_path / "points" / "abc.json"
    # Python's own SIGINT handler (an earlier test or library may have replaced it)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            store.atomic_write_json(target, {"value": 0.25})
    finally:
        stop.set()
        signal.signal(signal.SIGINT, previous)
    assert sorted(p.name for p in target.parent.iterdir()) == ["abc.json"]
    assert json.loads(target.read_text()) == {"value": 0.25}
