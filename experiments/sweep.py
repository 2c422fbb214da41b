"""Run a list of configurations through the result store, with a progress bar."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm

from .measure import measure, normalise_config
from .store import ResultStore

__all__ = ["run_points"]


def run_points(store: ResultStore, configs, desc: str = "points", compute=measure) -> list:
    """Compute (or reuse) every configuration; returns the records in order."""
    configs = [normalise_config(c) for c in configs]
    records = []
    bar = tqdm(configs, desc=desc, unit="pt", file=sys.stderr, dynamic_ncols=True,
               disable=None)
    for cfg in bar:
        bar.set_postfix_str(f"{cfg['prior']} d={cfg['d']} {cfg['sampler']} T={cfg['T']}")
        records.append(store.get_or_compute(cfg, lambda c=cfg: compute(c), cfg["device"]))
    return records
