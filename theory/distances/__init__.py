"""Distances between a sampler's output law and its target, each with its interval and the
method used (THEORY.md section 5).

* ``estimate``: :class:`DistanceEstimate`, the result of every computation here;
* ``gaussian``: closed forms between Gaussians (1-D TV, KL, Hellinger, W2; Bures W2,
  sliced W2, entropic OT and the Sinkhorn divergence in d dimensions);
* ``exact``: distances of exact output laws (quadrature; TV of products by FFT of the law
  of the log-likelihood ratio), error by refinement;
* ``pushforward``: Monte Carlo TV and KL of deterministic samplers from exact densities;
* ``samples``: sample-based W2, sliced W2 and Sinkhorn (POT) with interval and noise floor.
"""
