"""How studies run: the result store (atomic, resumable, with provenance), sweeps over
executors (serial, local processes, Dask), the registry, the study skeleton and the
tightness report across studies."""
