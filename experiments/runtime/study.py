"""The skeleton every study (one figure of the paper) runs through:

    configs(fast) -> points (cached, computed by the executor) -> summarise -> summary.json
    -> figure -> figures/<name>.png

A study module holds only what is its own:

* ``NAME`` (the registered name), ``CLAIM`` (the sentence it checks);
* ``configs(fast) -> list[dict]``: the points of the sweep;
* ``compute(cfg) -> dict`` (optional, module-level so that it can run in a worker; default
  :func:`experiments.points.measure.measure`) and ``NORMALISE`` (optional: ``None`` takes
  the configurations as they are; default the measure configuration's normaliser);
* ``summarise(records, fast) -> dict``: fits and curves from the finished points (each record
  is ``{"config", "result", ...}`` in the order of ``configs``);
* ``figure(summary, figures_dir) -> path``;
* ``reading(summary) -> str`` (optional): one computed sentence on what the numbers say;
* ``SINGLE_THREAD = True`` (optional): small tensors, where torch's threads only add overhead;
* ``prepare(fast, root, executor) -> context`` (optional): work the configurations depend on
  (e.g. tuning runs, cached in their own store), run before ``configs(fast, context)``;
* ``tables(summary) -> {file name: text}`` (optional): tables (leaderboards) written next to
  ``summary.json``, their paths listed in ``summary["tables"]``.

``figure`` may return one path or a list of paths (``summary["figure"]`` or
``summary["figures"]``).

:func:`run_study` does the rest: the result store (resume, provenance), the executor, the
bookkeeping fields of the summary, writing it, drawing the figure.
"""
from __future__ import annotations

from types import ModuleType

import torch

from ..points.measure import measure, normalise_config
from .store import ResultStore, atomic_write_text
from .sweep import run_points

__all__ = ["run_study", "FIT_LABEL_KEYS"]

#: Fields of a summary's fit that name its curve (in this order) where a fit is printed.
FIT_LABEL_KEYS = ("prior", "d", "sampler", "T", "vs", "problem", "method", "sampling",
                  "algorithm", "eta")


def run_study(study: ModuleType, fast: bool = False, root=None, figures_dir="figures",
              executor=None) -> dict:
    """Run one study end to end; returns its summary (with ``figure``, the path drawn)."""
    if getattr(study, "SINGLE_THREAD", False):
        torch.set_num_threads(1)
    store = ResultStore(study.NAME, root)
    if hasattr(study, "prepare"):
        configs = study.configs(fast, study.prepare(fast, root, executor))
    else:
        configs = study.configs(fast)
    records = run_points(store, configs, desc=study.NAME,
                         compute=getattr(study, "compute", measure), executor=executor,
                         normalise=getattr(study, "NORMALISE", normalise_config))
    summary = {"experiment": study.NAME, "fast": fast, **study.summarise(records, fast),
               "points": len(records), "computed": store.computed, "reused": store.reused}
    summary.setdefault("fits", [])
    if hasattr(study, "tables"):
        summary["tables"] = []
        for fname, text in study.tables(summary).items():
            path = store.dir / fname
            atomic_write_text(path, text)
            summary["tables"].append(str(path))
    store.write_summary(summary)
    fig = study.figure(summary, figures_dir)
    if isinstance(fig, (list, tuple)):
        summary["figures"] = [str(f) for f in fig]
    else:
        summary["figure"] = str(fig)
    return summary
