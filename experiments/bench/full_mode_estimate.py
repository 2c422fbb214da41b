"""Estimate of each experiment's full-mode time from a finished fast-mode run.

    python -m experiments.bench.full_mode_estimate [--results results] [NAME ...]

Measured, not guessed: every fast-mode point's compute time is in its cached record
(``seconds``). For each full-mode configuration the script takes the fast-mode point that
matches it best (same categorical settings; nearest in log scale on the other numbers) and
scales that point's time by the sizes that work grows with: T, K, the chain count n and the
score budget linearly, and ``pcs_steps + 1``, ``dds_steps + 1`` linearly. The sum over the
full-mode configurations is the estimate, in the same machine state as the fast run (a
loaded machine's seconds stay loaded seconds: the ratio full / fast is what carries over).
A study whose fast run is not cached is skipped, and the script says so.
"""
from __future__ import annotations

import argparse
import json
import math

from ..points.measure import normalise_config
from ..runtime import registry
from ..runtime.store import ResultStore

SIZE = ("T", "K", "n", "budget")            # work grows linearly in these
STEPS = ("pcs_steps", "dds_steps")          # and in these plus one


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scale(full: dict, fast: dict) -> float:
    s = 1.0
    for k in SIZE:
        if _num(full.get(k)) and _num(fast.get(k)) and fast[k] > 0:
            s *= full[k] / fast[k]
    for k in STEPS:
        if _num(full.get(k)) and _num(fast.get(k)):
            s *= (full[k] + 1) / (fast[k] + 1)
    return s


def _distance(full: dict, fast: dict) -> float:
    """inf unless the categorical settings agree; else the log-distance of the numbers."""
    d = 0.0
    for k in set(full) | set(fast):
        a, b = full.get(k), fast.get(k)
        if _num(a) and _num(b):
            d += abs(math.log((abs(a) + 1e-3) / (abs(b) + 1e-3)))
        elif a != b:
            return math.inf
    return d


def estimate(name: str, results=None) -> dict | None:
    """``{"fast_points", "fast_seconds", "full_points", "full_seconds"}`` or None when
    the fast run is not cached."""
    mod = registry.get(name)
    if hasattr(mod, "prepare"):
        # its full-mode configurations come from a full-mode tuning run: listing them would
        # start that run (an estimate must not compute)
        return {"skipped": "its full-mode configurations depend on a tuning run (prepare)"}
    norm = getattr(mod, "NORMALISE", normalise_config)
    store = ResultStore(name, results)
    prep = (lambda c: dict(c)) if norm is None else norm
    recs = [store.load(prep(c)) for c in mod.configs(True)]
    recs = [r for r in recs if r is not None]
    if not recs:
        return None
    full = [prep(c) for c in mod.configs(False)]
    total, unmatched = 0.0, 0
    for cfg in full:
        best = min(recs, key=lambda r: _distance(cfg, r["config"]))
        if math.isinf(_distance(cfg, best["config"])):
            unmatched += 1
            best = min(recs, key=lambda r: abs(_scale(cfg, r["config"]) - 1))
        total += best["seconds"] * _scale(cfg, best["config"])
    return {"fast_points": len(recs), "fast_seconds": sum(r["seconds"] for r in recs),
            "full_points": len(full), "full_seconds": total, "unmatched": unmatched}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.bench.full_mode_estimate")
    p.add_argument("names", nargs="*")
    p.add_argument("--results", default=None)
    a = p.parse_args(argv)
    print(f"{'experiment':24s} {'fast pts':>8s} {'fast s':>9s} {'full pts':>8s} "
          f"{'full s (est.)':>14s} {'ratio':>7s}")
    for name in a.names or list(registry.EXPERIMENTS):
        e = estimate(name, a.results)
        if e is None:
            print(f"{name:24s} (no cached fast run)")
            continue
        if "skipped" in e:
            print(f"{name:24s} (no estimate: {e['skipped']})")
            continue
        print(f"{name:24s} {e['fast_points']:8d} {e['fast_seconds']:9.0f} {e['full_points']:8d} "
              f"{e['full_seconds']:14.0f} {e['full_seconds'] / e['fast_seconds']:7.1f}"
              + (f"  ({e['unmatched']} configurations matched loosely"
                 + ("; not a reliable estimate: most points differ in size, not only in "
                    "T, K, n or budget" if e["unmatched"] > e["full_points"] / 2 else "")
                 + ")" if e["unmatched"] else ""))
    print(json.dumps({"note": "seconds are the fast run's per-point compute times, summed "
                              "(one worker); divide by the workers for wall time"}))


if __name__ == "__main__":
    main()
