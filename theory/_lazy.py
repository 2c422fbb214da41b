"""Lazy imports: ``torch`` loads when a path first uses it, not when ``theory`` is imported.

The exact engines run on numpy and scipy alone; importing torch costs about a second, so a
module that needs torch only inside some of its functions writes ``from ._lazy import torch``
and uses ``torch.xxx`` as usual: the first attribute read imports the real module (and
copies its namespace into the stand-in, so later reads cost a dict look-up). Annotations
need nothing (the modules use ``from __future__ import annotations``); module-level values
that need torch (a default ``dtype``) are resolved when first used instead.
"""
from __future__ import annotations

import importlib
import types

__all__ = ["torch"]


class _LazyModule(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_lazy_name"] = name

    def _load(self):
        module = importlib.import_module(self._lazy_name)
        self.__dict__.update({k: v for k, v in module.__dict__.items()
                              if k not in ("__name__", "__spec__", "__loader__")})
        return module

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            # dunder look-ups (copy, pickle, inspect, doctest) must not import the module
            if attr not in ("__version__", "__file__", "__path__"):
                raise AttributeError(attr)
        return getattr(self._load(), attr)

    def __repr__(self):
        return f"<lazy module {self._lazy_name!r}>"


torch = _LazyModule("torch")

