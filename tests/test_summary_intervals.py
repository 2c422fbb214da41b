"""No summary holds a value outside its own interval (issue 16): every estimate stored in the
fast-mode summaries (tests/data/summaries, the output of `diffrates reproduce --fast`) and
in the full-mode ones kept (tests/data/summaries_full) lies in the interval stored beside it.

Two layouts carry intervals: ``value`` (or ``tv``, ``exponent``, ...) beside ``lower`` and
``upper`` (scalars, or lists element by element), and a value beside a two-element
interval (``ci``, ``mass_90_ci``, ``best_interval``, ...; the pairs below). The scan fails
on the value-outside case and also if it found fewer intervals than a floor, so that a
change of layout cannot make it pass by finding nothing."""
import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
# the fast-mode summaries, and the full-mode ones kept so far (summaries_full)
SUMMARIES = sorted(DATA.glob("summaries/*.json")) + sorted(DATA.glob("summaries_full/*.json"))
VALUE_KEYS = ("value", "tv", "estimate", "rate", "exponent", "slope")
PAIRS = {"ci": ("exponent", "value"), "mass_90_ci": ("mass_90",),
         "rate_factor_distance_ci": ("rate_factor_distance",),
         "measured_ci": ("measured_rate",), "best_interval": ("best_value",),
         "worst_interval": ("worst_value",), "mcgdiff_interval": ("mcgdiff",),
         "dps_interval": ("dps",)}


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _inside(v, lo, hi):
    tol = 1e-12 * max(abs(v), 1e-300)
    return lo - tol <= v <= hi + tol


def scan(obj, path=""):
    """(number of intervals checked, [paths of values outside their interval])."""
    n, bad = 0, []
    if isinstance(obj, dict):
        if "lower" in obj and "upper" in obj:
            for vk in VALUE_KEYS:
                if vk not in obj:
                    continue
                v, lo, hi = obj[vk], obj["lower"], obj["upper"]
                if all(_num(q) for q in (v, lo, hi)):
                    n += 1
                    bad += [] if _inside(v, lo, hi) else [f"{path}/{vk}: {v} [{lo}, {hi}]"]
                elif all(isinstance(q, list) for q in (v, lo, hi)) and len(v) == len(lo) == len(hi):
                    for i, trio in enumerate(zip(v, lo, hi)):
                        if all(_num(q) for q in trio):
                            n += 1
                            if not _inside(*trio):
                                bad.append(f"{path}/{vk}[{i}]: {trio}")
                break
        for ik, vks in PAIRS.items():
            iv = obj.get(ik)
            if isinstance(iv, list) and len(iv) == 2 and all(_num(q) for q in iv):
                vk = next((k for k in vks if _num(obj.get(k))), None)
                if vk is not None:
                    n += 1
                    if not _inside(obj[vk], *iv):
                        bad.append(f"{path}/{vk}: {obj[vk]} {ik} {iv}")
        for k, v in obj.items():
            m, b = scan(v, f"{path}/{k}")
            n, bad = n + m, bad + b
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            m, b = scan(v, f"{path}[{i}]")
            n, bad = n + m, bad + b
    return n, bad


def test_scan_finds_a_value_outside_its_interval():
    n, bad = scan({"a": {"value": 0.5, "lower": 0.1, "upper": 0.4},
                   "b": {"exponent": -1.0, "ci": [-0.9, -0.5]},
                   "c": {"tv": [0.1, 0.2], "lower": [0.0, 0.1], "upper": [0.2, 0.3]}})
    assert n == 4 and len(bad) == 2, (n, bad)


@pytest.mark.parametrize("path", SUMMARIES, ids=[f"{p.parent.name}/{p.stem}" for p in SUMMARIES])
def test_every_value_lies_in_its_interval(path):
    n, bad = scan(json.loads(path.read_text()))
    assert not bad, bad[:10]


def test_the_scan_covers_the_summaries():
    """Every summary but scaledgd-stepsize (deterministic errors of single runs, no
    estimate) holds intervals, about 1700 in all."""
    counts = {f"{p.parent.name}/{p.stem}": scan(json.loads(p.read_text()))[0] for p in SUMMARIES}
    empty = {k for k, v in counts.items() if v == 0}
    assert len(SUMMARIES) >= 12 and sum(counts.values()) >= 1500, counts
    assert empty <= {"summaries/scaledgd-stepsize", "summaries_full/scaledgd-stepsize"}, counts
