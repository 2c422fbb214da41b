"""No summary holds a value outside its own interval: every (value, lower, upper) triple in
the fixture summaries (tests/data/summaries, one per registered experiment, written by
``python -m experiments.notebook.fixtures``), whether scalar or as parallel lists (``tv`` or
``value`` beside ``lower`` and ``upper``), and every fitted exponent against its interval."""
import json

import pytest

from experiments.notebook.fixtures import FIXTURES
from experiments.runtime.registry import EXPERIMENTS


def _triples(node, path="summary"):
    """(where, value, lower, upper) for every interval found in a JSON tree."""
    if isinstance(node, dict):
        lo, hi = node.get("lower"), node.get("upper")
        for key in ("value", "tv"):
            v = node.get(key)
            if isinstance(v, (int, float)) and isinstance(lo, (int, float)) and \
                    isinstance(hi, (int, float)):
                yield path, v, lo, hi
            if isinstance(v, list) and isinstance(lo, list) and isinstance(hi, list):
                for i, (a, b, c) in enumerate(zip(v, lo, hi)):
                    if all(isinstance(x, (int, float)) for x in (a, b, c)):
                        yield f"{path}.{key}[{i}]", a, b, c
        if isinstance(node.get("exponent"), (int, float)) and isinstance(node.get("ci"), list):
            yield f"{path}.exponent", node["exponent"], node["ci"][0], node["ci"][1]
        for k, v in node.items():
            yield from _triples(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _triples(v, f"{path}[{i}]")


# summaries with no interval at all, and why (every other one must carry some)
NO_INTERVALS = {"scaledgd-stepsize": "final errors of single deterministic runs on one seeded "
                                     "problem per kappa: exact numbers, nothing estimated"}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_no_value_outside_its_interval(name):
    path = FIXTURES / f"{name}.json"
    assert path.exists(), \
        f"no fixture for {name}: `python -m experiments.notebook.fixtures {name}`"
    found = list(_triples(json.loads(path.read_text())))
    outside = [(w, v, lo, hi) for w, v, lo, hi in found
               if not (lo - 1e-12 * abs(lo) <= v <= hi + 1e-12 * abs(hi))]
    assert found or name in NO_INTERVALS, name
    assert outside == [], outside[:5]
