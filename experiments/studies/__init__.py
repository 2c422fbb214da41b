"""One module per figure (its configurations, summary and figure; the skeleton is
:mod:`experiments.runtime.study`), registered in :mod:`experiments.runtime.registry`."""
