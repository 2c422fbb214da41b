r"""Containers for exact 1-D output laws and the factors of a structured output law.

A structured prior's output law factorises into independent one-dimensional laws
(THEORY.md section 4); each factor pairs an output law with its target law and a
multiplicity (how many coordinates share it). :mod:`theory.distances.exact` turns a list of
factors into distances.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from ..mixture1d import Mixture1D

__all__ = ["QuadratureLaw1D", "GaussianFactor", "QuadratureFactor", "Factor"]


@dataclass
class QuadratureLaw1D:
    r"""A 1-D law known through quadrature nodes.

    :math:`\int f(x) p(x)\,dx \approx \sum_j \mathrm{dx}_j f(x_j) e^{\mathrm{logp}_j}`.
    ``cdf``/``sf`` are :math:`P(X \le x_j)` and :math:`P(X > x_j)`; ``lost_mass`` is the
    mass the representation does not hold (an error term).
    """

    x: np.ndarray
    dx: np.ndarray
    logp: np.ndarray
    cdf: np.ndarray
    sf: np.ndarray
    method: str
    lost_mass: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def mass(self) -> np.ndarray:
        return self.dx * np.exp(self.logp)


@dataclass
class GaussianFactor:
    """Independent 1-D Gaussian output/target pairs, vectorised over distinct coordinates."""

    mean_p: np.ndarray
    var_p: np.ndarray
    mean_q: np.ndarray
    var_q: np.ndarray
    mult: np.ndarray


@dataclass
class QuadratureFactor:
    """An output law on quadrature nodes and its 1-D mixture target, repeated ``mult`` times."""

    law: QuadratureLaw1D
    target: Mixture1D
    mult: int

Factor = Union[GaussianFactor, QuadratureFactor]
