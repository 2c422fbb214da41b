"""Posterior sampling with a diffusion prior, against exact answers (THEORY.md sections 6-8).

* ``likelihoods``: measurement models (linear-Gaussian, phase retrieval, 1-bit logistic);
* ``closed_form``: mixture posteriors and DPnP's stationary law pi_eta in closed form;
* ``annealing``: DPnP's schedules eta_k;
* ``plug_and_play``: DPnP (PCS and DDS sub-samplers); ``dps``: the DPS baseline;
* ``inits``: initial laws, as samples or as grid masses;
* ``grid_base``, ``grid1d``, ``grid2d``, ``refinement``: the Gibbs chain's laws on 1-D and
  2-D grids, their distances and exact rates, errors by refinement;
* ``estimators``: binned TV of chains against grid laws, with interval and floor.
"""
