"""Random sources and devices: one place that turns ``seed`` / ``generator`` / ``device``
arguments into a torch generator on the right device.

Every random function of the library takes either a ``seed`` (an integer) or a
``torch.Generator`` (not both); the same seed gives the same numbers on the same device.
"""
from __future__ import annotations

from typing import Optional

from ._lazy import torch

__all__ = ["resolve_generator", "check_device", "check_device_name"]


def resolve_generator(seed, generator: Optional[torch.Generator], device):
    """``(generator, seed_used, supplied)`` from a seed or a generator.

    With ``generator`` given, it must live on ``device``'s type and ``seed`` must be None;
    with neither, a fresh seed is drawn (and returned, so that the run can be repeated).
    """
    if generator is not None:
        if seed is not None:
            raise ValueError("give either seed or generator, not both")
        if torch.device(generator.device).type != torch.device(device).type:
            raise ValueError(f"the generator lives on {generator.device}, the prior on {device}")
        return generator, int(generator.initial_seed()), True
    g = torch.Generator(device=device)
    if seed is None:
        seed = int(g.seed())
    else:
        if isinstance(seed, bool) or not float(seed).is_integer():
            raise ValueError(f"seed must be an integer, got {seed!r}")
        g.manual_seed(int(seed))
    return g, int(seed), False


def check_device(prior, device):
    """The prior's device; ``device`` (if given) must be of the same type."""
    if device is None:
        return prior.device
    device = torch.device(device)
    if device.type != prior.device.type:
        raise ValueError(f"device {device} differs from the prior's device {prior.device}: "
                         f"build the prior on the device you want to compute on")
    return prior.device


def check_device_name(name) -> str:
    """``name`` if it names a device this machine has: ``cpu`` or ``cuda[:N]``."""
    name = str(name)
    if name != "cpu" and not (name == "cuda" or (name.startswith("cuda:")
                                                 and name[5:].isdigit())):
        raise ValueError(f"unknown device {name!r}; use cpu or cuda[:N]")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name} requested but CUDA is not available on this machine")
        if ":" in name and int(name[5:]) >= torch.cuda.device_count():
            raise ValueError(f"device {name} requested but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return name
