"""The ``diffrates`` commands (``main`` dispatches; one module per group of subcommands)."""
