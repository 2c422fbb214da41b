"""One configuration (a JSON-able dict) -> one result dict: validation, the objects it names,
the computation. Shared by the command line and the studies."""
