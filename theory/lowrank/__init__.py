r"""diffrates.theory.lowrank: the low-rank vignette of seed 002 (ScaledGD and ScaledGD(lambda)).

Data flow, one module per arrow (THEORY.md section 7, ScaledGD entry):

    operators (the Gaussian sensing design: dense, Gram or matrix-free)
    -> problems (ground truth X* of rank r and condition number kappa; measurements)
    -> algorithms (GD, ScaledGD, ScaledGD(lambda): trajectories of the relative error and
       of the paper's factor distance)
    -> rates (linear contraction rate over the linear phase, iterations to a tolerance,
       intervals over seeds, exponents in kappa)
    -> sweeps (one JSON-able config per point; the experiments' grids)

Quick use::

    from theory.lowrank import make_problem, scaled_gd, fit_linear_rate
    prob = make_problem("sensing", kappa=10, fast=True, seed=0)
    run = scaled_gd(prob, eta=0.5, iterations=200)
    print(run.iterations_to(1e-10), fit_linear_rate(run.factor_distance))

References:
    Tong, Ma, Chi, "Accelerating ill-conditioned low-rank matrix estimation via scaled
    gradient descent", JMLR 22(150), 2021, arXiv:2005.08898.
    Xu, Shen, Ma, Chi, "The power of preconditioning in overparameterized low-rank matrix
    sensing", ICML 2023, arXiv:2302.01186.
"""
from .operators import GaussianSensingOperator
from .problems import (GroundTruth, MatrixSensing, MatrixCompletion, RobustPCA, PSDSensing,
                       ground_truth, make_problem, sparse_threshold, PAPER_SIZES, FAST_SIZES,
                       PROBLEMS)
from .algorithms import (Trajectory, factor_distance, spectral_init, gd, scaled_gd,
                         scaled_gd_lambda, overparam_gd, run_algorithm, ALGORITHMS)
from .rates import (LinearRate, Interval, fit_linear_rate, iterations_to, seed_interval,
                    kappa_exponent)

__all__ = ["GroundTruth", "GaussianSensingOperator", "MatrixSensing", "MatrixCompletion",
           "RobustPCA", "PSDSensing", "ground_truth", "make_problem", "sparse_threshold",
           "PAPER_SIZES", "FAST_SIZES", "PROBLEMS",
           "Trajectory", "factor_distance", "spectral_init", "gd", "scaled_gd",
           "scaled_gd_lambda", "overparam_gd", "run_algorithm", "ALGORITHMS",
           "LinearRate", "Interval", "fit_linear_rate", "iterations_to", "seed_interval", "kappa_exponent"]
from .sweeps import (run_point, configs_kappa, configs_noise, configs_stepsize,
                     summarize_kappa)

__all__ += ["run_point", "configs_kappa", "configs_noise", "configs_stepsize",
            "summarize_kappa"]
