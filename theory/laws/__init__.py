"""Exact output laws of the samplers (THEORY.md sections 4-5).

* ``base``: containers (a 1-D law on quadrature nodes; output/target factor pairs);
* ``gaussian``: Gaussian priors, the scalar recursion per eigen-coordinate;
* ``grid1d``: 1-D laws of any affine rule by grid propagation (map, then Gaussian blur);
* ``flow1d``: 1-D laws of deterministic rules by change of variables (an independent check);
* ``factors``: a structured prior's output law as independent factors;
* ``pushforward``: push-forward log densities of deterministic samplers in any d.
"""
