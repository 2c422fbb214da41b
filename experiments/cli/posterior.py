"""``diffrates posterior``: one posterior sampler on one problem of the suite, every metric
against the exact posterior with its interval, floor and method (computed by
:mod:`experiments.points.posterior`).

    diffrates posterior --method tds --problem bimodal-1d-gaussian --nfe 200 [--n 2000] \\
        [--seed 0] [--knob particles=16 --knob twist_var=ve] [--json]
    diffrates posterior --list            # methods (with their knobs) and problem families
"""
from __future__ import annotations

import json

NAME = "posterior"


def add_parser(sub):
    p = sub.add_parser("posterior", help="one posterior sampler on one problem: every metric "
                                         "against the exact posterior, with intervals")
    p.add_argument("--method", default=None, help="sampler name (see --list)")
    p.add_argument("--problem", default=None, help="FAMILY or FAMILY:SEED (see --list)")
    p.add_argument("--nfe", default="200", help="prior-score evaluations per output (default 200)")
    p.add_argument("--n", default="2000", help="output samples (default 2000)")
    p.add_argument("--seed", default="0", help="seed of the sampler and the metrics (default 0)")
    p.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="a tuning knob (repeatable); defaults in --list")
    p.add_argument("--n-boot", default="100", help="bootstrap resamples (default 100)")
    p.add_argument("--device", default="cpu", help="cpu (the problems live on the CPU)")
    p.add_argument("--list", action="store_true", help="list methods, knobs and problems")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _value(v: str):
    low = v.strip().lower()
    if low in ("none", "null"):
        return None
    try:
        f = float(v)
    except ValueError:
        return v.strip()
    return int(f) if f.is_integer() and "." not in v and "e" not in low else f


def parse_knobs(items) -> dict:
    out = {}
    for it in items:
        name, eq, val = str(it).partition("=")
        if not eq or not name.strip():
            raise ValueError(f"a knob is NAME=VALUE, got {it!r}")
        out[name.strip()] = _value(val)
    return out


def _list():
    from theory.posterior.methods import METHODS
    from theory.posterior.problems import FAMILIES
    print("methods:")
    for name, cls in METHODS.items():
        print(f"  {name:16s} {cls.reference}")
        for k, kb in cls.KNOBS.items():
            print(f"      {k}={kb.default!r}: {kb.doc}")
    print("problem families (FAMILY or FAMILY:SEED; tuning problems use seeds >= 1000):")
    for f in FAMILIES:
        print(f"  {f}")
    return 0


def _fmt(x):
    return "n/a" if x is None else f"{x:.5g}"


def run(a) -> int:
    if a.list:
        return _list()
    if a.method is None or a.problem is None:
        raise ValueError("give --method and --problem (see diffrates posterior --list)")
    import torch                                        # the library loads when a command runs

    from ..points.posterior import compute, normalise_config
    from ..runtime.store import provenance
    cfg = normalise_config({"method": a.method, "problem": a.problem, "nfe": a.nfe, "n": a.n,
                            "seed": a.seed, "knobs": parse_knobs(a.knob), "n_boot": a.n_boot,
                            "device": a.device})
    torch.set_num_threads(1)
    res = compute(cfg)
    if a.json:
        print(json.dumps({"config": cfg, **res, "provenance": provenance(cfg["device"])},
                         default=float))
        return 0
    s = res["sampler"]
    print(f"{cfg['method']} on {cfg['problem']} ({res['posterior']}): {s['n']} outputs, "
          f"NFE {s['nfe']:.4g} per output, {s['particles']} particle(s) per run")
    print(f"  knobs: {s['knobs']}")
    for note in s["notes"]:
        print(f"  note: {note}")
    print(f"  {'metric':18s} {'value':>10s} {'95% interval':>24s} {'floor (q97.5)':>16s}")
    for name, m in res["metrics"].items():
        if m.get("value") is None:
            print(f"  {name:18s} {'n/a':>10s}   ({m.get('why')})")
            continue
        flag = "  below floor" if m.get("below_floor") else ""
        print(f"  {name:18s} {_fmt(m['value']):>10s} [{_fmt(m['lower']):>10s}, "
              f"{_fmt(m['upper']):>10s}] {_fmt(m['floor']):>7s} ({_fmt(m['floor_upper'])}){flag}")
    for name, m in res["metrics"].items():
        if m.get("method"):
            print(f"  method[{name}]: {m['method']}")
    return 0
