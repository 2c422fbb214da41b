"""Bad input, tried as a hostile user would (issue 13): a table of bad command lines across
every subcommand and of bad calls of the public constructors.

Each command line must give status 2, nothing on stdout, exactly one line on stderr that
names the problem (the expected words are in the table), no traceback, nothing written (the
command runs in an empty folder that must stay empty; output folders point there), and be
refused before any computing: under a second in process. Each library call must raise
ValueError with a one-line message holding the expected words, under a second.

Everything runs in this process (``experiments.cli.main.main``); the whole file takes about
ten seconds.
"""
import time

import pytest

from experiments.cli.main import main

# {FILE}: a path to an existing file (a folder cannot be made there); {DIR}: a writable
# folder outside the watched one.
M, D, R = "measure", "dpnp", "run"
RD = "rate-vs-d"

CLI_CASES = [
    # ---- measure: numbers ------------------------------------------------------------
    ([M, "--T", "1"], "T must be >= 2"),
    ([M, "--T", "0"], "T must be >= 2"),
    ([M, "--T", "-5"], "T must be >= 2"),
    ([M, "--T", "abc"], "T must be a number"),
    ([M, "--T", "1e400"], "T must be a finite number"),
    ([M, "--T", "nan"], "T must be a finite number"),
    ([M, "--T", "inf"], "T must be a finite number"),
    ([M, "--T", "2.5"], "T must be an integer"),
    ([M, "--T", ""], "T must be a number"),
    ([M, "--T", "1e10"], "T = 10000000000 steps needs at least"),
    ([M, "--d", "0"], "d must be >= 1"),
    ([M, "--d", "-1"], "d must be >= 1"),
    ([M, "--d", "2.5"], "d must be an integer"),
    ([M, "--d", "abc"], "d must be a number"),
    ([M, "--d", "nan"], "d must be a finite number"),
    ([M, "--d", "1e12"], "d = 1000000000000 with T = 1000 needs at least"),
    ([M, "--d", "1e400"], "d must be a finite number"),
    ([M, "--prior", "gmm", "--d", "1e5", "--method", "samples", "--metric", "w2"],
     "needs at least"),
    ([M, "--c0", "nan"], "c0 must be a finite number"),
    ([M, "--c0", "-1"], "c0 must be a positive"),
    ([M, "--c0", "0"], "c0 must be a positive"),
    ([M, "--c0", "1e308"], "c0 = 1e+308 makes beta_1 = T^-c0 underflow"),
    ([M, "--c0", "inf"], "c0 must be a finite number"),
    ([M, "--c1", "0"], "c1 must be a positive"),
    ([M, "--c1", "inf"], "c1 must be a finite number"),
    ([M, "--c1", "-2"], "c1 must be a positive"),
    ([M, "--c1", "1e-320"], "underflows"),
    ([M, "--T", "10", "--c1", "40"], "must be < 1"),
    ([M, "--seed", "-3"], "seed must be >= 0"),
    ([M, "--seed", "1.5"], "seed must be an integer"),
    ([M, "--seed", "abc"], "seed must be a number"),
    ([M, "--method", "samples", "--samples", "5"], "samples must be >= 10"),
    ([M, "--method", "samples", "--samples", "abc"], "samples must be a number"),
    ([M, "--method", "samples", "--metric", "w2", "--samples", "1e12"],
     "samples = 1000000000000 in d = 1"),
    ([M, "--method", "samples", "--metric", "sinkhorn", "--samples", "1e7"], "needs at least"),
    ([M, "--method", "pushforward", "--samples", "1e12"], "needs at least"),
    ([M, "--perturbation", "additive-field", "--eps", "-1"], "eps must be a non-negative"),
    ([M, "--perturbation", "additive-field", "--eps", "1e300"], "outside [0, 100]"),
    ([M, "--perturbation", "additive-field", "--eps", "nan"], "eps must be a finite number"),
    ([M, "--perturbation", "step-noise", "--eps", "1e4"], "outside [0, 100]"),
    ([M, "--perturbation", "wrong-weights", "--eps", "2"], "outside [0, 1]"),
    ([M, "--perturbation", "wrong-variances", "--eps", "inf"], "eps must be a finite number"),
    ([M, "--prior", "gmm", "--d", "2", "--prior-seed", "-1", "--method", "samples",
      "--metric", "w2"], "prior_seed must be >= 0"),
    # ---- measure: names --------------------------------------------------------------
    ([M, "--prior", "nope"], "unknown prior 'nope'"),
    ([M, "--prior", ""], "unknown prior ''"),
    ([M, "--sampler", "nope"], "unknown sampler 'nope'"),
    ([M, "--schedule", "nope"], "unknown schedule 'nope'"),
    ([M, "--metric", "nope"], "unknown metric 'nope'"),
    ([M, "--method", "nope"], "unknown method 'nope'"),
    ([M, "--perturbation", "nope"], "unknown perturbation 'nope'"),
    ([M, "--device", "tpu"], "unknown device 'tpu'"),
    ([M, "--device", "cudax"], "unknown device 'cudax'"),
    ([M, "--device", "cuda:x"], "unknown device 'cuda:x'"),
    ([M, "--device", ""], "unknown device ''"),
    ([M, "--device", "cuda:99"], "cuda:99 requested but"),
    # ---- measure: flags that do not apply, methods that do not ----------------------
    ([M, "--schedule", "linear", "--c0", "-1"], "c0 applies only to schedule li"),
    ([M, "--schedule", "cosine", "--c1", "3"], "c1 applies only to schedule li"),
    ([M, "--eps", "0.1"], "eps applies only to a score perturbation"),
    ([M, "--samples", "100"], "samples applies only to methods"),
    ([M, "--prior-seed", "3"], "prior_seed applies only to prior gmm"),
    ([M, "--method", "pushforward", "--sampler", "li-sde"], "methods that do: exact"),
    ([M, "--method", "auto", "--prior", "gmm", "--d", "3", "--sampler", "li-sde"],
     "no method computes"),
    ([M, "--metric", "sinkhorn"], "method exact does not apply"),
    ([M, "--metric", "sliced_w2", "--method", "pushforward"], "does not apply"),
    ([M, "--prior", "gmm", "--d", "2", "--perturbation", "additive-field", "--eps", "0.1"],
     "does not apply"),
    ([M, "--prior", "gauss", "--d", "2", "--metric", "w2", "--method", "samples",
      "--samples", "6000"], "exact OT (w2) on 6000 points"),
    ([M, "--prior", "subspace", "--d", "1"], "it needs d >= 2"),
    ([M, "--prior", "gmm", "--d", "4"], "method exact does not apply"),
    ([M, "--perturbation", "step-noise", "--eps", "0.1", "--sampler", "accel-ode"],
     "two-step rules have no exact law"),
    # ---- measure: the parser ---------------------------------------------------------
    ([M, "--unknown-flag", "1"], "unrecognized arguments"),
    ([M, "extra"], "unrecognized arguments"),
    ([M, "--T"], "expected one argument"),
    ([M, "--json=3"], "ignored explicit argument"),
    # ---- dpnp: numbers ---------------------------------------------------------------
    ([D, "--d", "0"], "d must be >= 1"),
    ([D, "--d", "2.5"], "d must be an integer"),
    ([D, "--d", "1e5"], "needs at least"),
    ([D, "--d", "1e12"], "needs at least"),
    ([D, "--sigma", "0"], "sigma must be a positive"),
    ([D, "--sigma", "-1"], "sigma must be a positive"),
    ([D, "--sigma", "1e-300"], "sigma = 1e-300 is below 1e-06"),
    ([D, "--sigma", "nan"], "sigma must be a finite number"),
    ([D, "--sigma", "inf"], "sigma must be a finite number"),
    ([D, "--likelihood", "logistic", "--pcs", "mala", "--y", "1", "--lam", "0"],
     "lam must be a positive"),
    ([D, "--likelihood", "logistic", "--pcs", "mala", "--y", "1", "--lam", "1e-9"],
     "lam = 1e-09 is below"),
    ([D, "--y", "abc"], "y must be finite numbers"),
    ([D, "--y", "1e308"], "y must be finite numbers in [-1e+06, 1e+06]"),
    ([D, "--y=-1e7"], "y must be finite numbers in"),
    ([D, "--y", "nan"], "y must be finite numbers"),
    ([D, "--y", "1,,2"], "y must be a number or comma-separated numbers"),
    ([D, "--y", ""], "y must be a number or comma-separated numbers"),
    ([D, "--y", "0.1,0.2"], "y has 2 values but the operator has 1 rows"),
    ([D, "--eta", "0"], "eta must be a positive"),
    ([D, "--eta", "-1"], "eta must be a positive"),
    ([D, "--eta", "abc"], "eta must be a number"),
    ([D, "--K", "0"], "K must be >= 1"),
    ([D, "--K", "1.5"], "K must be an integer"),
    ([D, "--K", "1e9"], "K = 1000000000 outer steps needs at least"),
    ([D, "--n", "50", "--metric", "w2"], "n must be >= 100"),
    ([D, "--metric", "w2", "--d", "2", "--n", "6000"], "exact OT (w2) on n = 6000"),
    ([D, "--d", "1e6", "--n", "1e6", "--metric", "sliced_w2"], "chains in d = 1000000 needs"),
    ([D, "--operator", "random", "--d", "2", "--m", "1e6"], "needs at least"),
    ([D, "--operator", "random", "--m", "0"], "m must be >= 1"),
    ([D, "--operator", "random", "--cond", "0.5"], "cond must be >= 1"),
    ([D, "--operator", "mask", "--keep", "0"], "keep must be a positive"),
    ([D, "--operator", "mask", "--keep", "1.5"], "keep must be <= 1"),
    ([D, "--seed", "-1"], "seed must be >= 0"),
    ([D, "--h", "0"], "h must be a positive"),
    ([D, "--h", "-1"], "h must be a positive"),
    ([D, "--pcs", "mala", "--pcs-steps", "0"], "pcs-steps must be >= 1"),
    ([D, "--pcs", "mala", "--pcs-step", "-1"], "pcs-step must be a positive"),
    ([D, "--dds", "sde", "--dds-steps", "0"], "dds-steps must be >= 1"),
    ([D, "--init", "point:abc"], "bad point init 'point:abc'"),
    ([D, "--init", "point:1e300"], "bad point init 'point:1e300'"),
    ([D, "--init", "point:1,2"], "point init needs 1 or d = 1 finite values, got 2"),
    # ---- dpnp: schedules -------------------------------------------------------------
    ([D, "--schedule", "nope"], "unknown annealing schedule 'nope'"),
    ([D, "--schedule", "geometric:0.1,1", "--K", "5"], "eta_max = 0.1 is below eta_min = 1"),
    ([D, "--schedule", "polynomial:0.1,1,1"], "eta_max = 0.1 is below eta_min = 1"),
    ([D, "--schedule", "reference:0.1,0.4"], "eta_max = 0.1 is below eta_min = 0.4"),
    ([D, "--schedule", "list:"], "needs at least one level"),
    ([D, "--schedule", "list:0.3,-1"], "eta must be a positive"),
    ([D, "--schedule", "constant:0"], "eta must be a positive"),
    ([D, "--schedule", "geometric:1,0.1,5"], "takes at most 2 values"),
    ([D, "--schedule", ""], "empty annealing schedule"),
    ([D, "--schedule", "reference", "--K", "5"], "but K = 5 was asked"),
    ([D, "--schedule", "geometric:1,0.1", "--K", "1e9"], "needs at least"),
    ([D, "--eta", "0.5", "--schedule", "reference"], "give either eta"),
    # ---- dpnp: names, flags that do not apply, routes -------------------------------
    ([D, "--prior", "nope"], "unknown prior 'nope'"),
    ([D, "--prior", "subspace"], "unknown prior 'subspace'"),
    ([D, "--likelihood", "nope"], "unknown likelihood 'nope'"),
    ([D, "--operator", "nope"], "unknown operator 'nope'"),
    ([D, "--pcs", "nope"], "unknown pcs 'nope'"),
    ([D, "--dds", "nope"], "unknown dds 'nope'"),
    ([D, "--dds", "sde", "--dds-rule", "nope"], "unknown dds-rule 'nope'"),
    ([D, "--metric", "nope"], "unknown metric 'nope'"),
    ([D, "--init", "nope"], "unknown init 'nope'"),
    ([D, "--device", "cudax"], "unknown device 'cudax'"),
    ([D, "--m", "3"], "m applies only to operator random"),
    ([D, "--cond", "3"], "cond applies only to operator random"),
    ([D, "--keep", "0.3"], "keep applies only to operator mask"),
    ([D, "--lam", "0.3"], "lam applies only to likelihood logistic"),
    ([D, "--likelihood", "logistic", "--pcs", "mala", "--y", "1", "--sigma", "0.3"],
     "sigma applies only to likelihoods gaussian and phase"),
    ([D, "--pcs-steps", "5"], "pcs_steps applies only to pcs mala and ula"),
    ([D, "--pcs-step", "0.1"], "pcs_step applies only to pcs mala and ula"),
    ([D, "--dds-steps", "5"], "dds_steps applies only to dds sde and ode"),
    ([D, "--dds-rule", "ddim"], "dds_rule applies only to dds sde and ode"),
    ([D, "--n", "500"], "n applies only to the chains"),
    ([D, "--metric", "sliced_w2", "--h", "0.1"], "h applies only to the grid routes"),
    ([D, "--likelihood", "phase"], "exact PCS needs the gaussian likelihood"),
    ([D, "--likelihood", "logistic", "--y", "1"], "exact PCS needs the gaussian likelihood"),
    ([D, "--likelihood", "phase", "--pcs", "mala", "--metric", "w2"],
     "needs the gaussian likelihood"),
    ([D, "--likelihood", "logistic", "--pcs", "mala", "--y", "0.5"], "must be +1 or -1"),
    ([D, "--bogus"], "unrecognized arguments"),
    # ---- run -------------------------------------------------------------------------
    ([R], "the following arguments are required: name"),
    ([R, "nope"], "unknown experiment 'nope'"),
    ([R, RD, "extra"], "unrecognized arguments"),
    ([R, RD, "--executor", ""], "empty executor"),
    ([R, RD, "--executor", " "], "empty executor"),
    ([R, RD, "--executor", "mpi"], "unknown executor 'mpi'"),
    ([R, RD, "--executor", "dask="], "needs an address"),
    ([R, RD, "--executor", "dask=nohost"], "needs a host and a port"),
    ([R, RD, "--executor", "dask=tcp://host:abc"], "needs a host and a port"),
    ([R, RD, "--executor", "dask=tcp://127.0.0.1:1"],
     "cannot reach the Dask scheduler at tcp://127.0.0.1:1"),
    ([R, RD, "--results", "{FILE}"], "is not a folder"),
    ([R, RD, "--results", "{FILE}/sub"], "cannot be created"),
    ([R, RD, "--figures", "{FILE}"], "is not a folder"),
    ([R, RD, "--figures", "{FILE}/sub/deeper"], "cannot be created"),
    ([R, RD, "--results", ""], "--results folder is empty"),
    ([R, RD, "--fast=1"], "ignored explicit argument"),
    ([R, RD, "--bogus"], "unrecognized arguments"),
    # ---- reproduce, report, list, the top level -----------------------------------
    (["reproduce", "--executor", ""], "empty executor"),
    (["reproduce", "--executor", "threads"], "unknown executor 'threads'"),
    (["reproduce", "--executor", "dask=tcp://127.0.0.1:1"], "cannot reach the Dask scheduler"),
    (["reproduce", "--results", "{FILE}"], "is not a folder"),
    (["reproduce", "--figures", "{FILE}"], "is not a folder"),
    (["reproduce", "extra"], "unrecognized arguments"),
    (["report", "--results", "{FILE}"], "is not a folder"),
    (["report", "--executor", ""], "empty executor"),
    (["report", "--executor", "nope"], "unknown executor 'nope'"),
    (["report", "--figures", "{DIR}"], "unrecognized arguments"),
    (["report", "--compute", "--results", "{DIR}/empty", "--executor",
      "dask=tcp://127.0.0.1:1"], "cannot reach the Dask scheduler"),
    (["posterior", "--method", "nope", "--problem", "bimodal-1d-gaussian"],
     "unknown method 'nope'"),
    (["posterior", "--method", "dps", "--problem", "nope"], "unknown problem family 'nope'"),
    (["posterior", "--method", "dps"], "give --method and --problem"),
    (["posterior", "--problem", "bimodal-1d-gaussian", "--method", "dps", "--nfe", "0"], "nfe must be >= 2"),
    (["posterior", "--problem", "bimodal-1d-gaussian", "--method", "dps", "--n", "-3"], "n must be >= 20"),
    (["posterior", "--problem", "bimodal-1d-gaussian", "--method", "dps", "--knob", "zeta"], "a knob is NAME=VALUE"),
    (["posterior", "--problem", "bimodal-1d-gaussian", "--method", "dps", "--knob", "nope=1"], "dps has no knob 'nope'"),
    (["posterior", "--problem", "bimodal-1d-gaussian", "--method", "dps", "--device", "cudax"], "unknown device 'cudax'"),
    (["posterior", "--problem", "bimodal-1d-gaussian", "--method", "dps", "--seed", "x"], "seed must be a number"),
    (["posterior", "--problem", "bimodal-1d-gaussian", "--method", "dps", "--n-boot", "0"], "n_boot must be >= 10"),
    (["list", "extra"], "invalid choice: 'extra'"),
    (["list", "priors", "extra"], "unrecognized arguments"),
    (["list", "--x"], "unrecognized arguments"),
    ([], "missing command"),
    (["nope"], "invalid choice: 'nope'"),
    (["--version"], "unrecognized arguments"),
]


def _lib_cases():
    from experiments.points import dpnp as points_dpnp
    from experiments.points import measure as points_measure
    from experiments.runtime.executors import Executor, check_scheduler, parse_executor
    from theory import li_schedule, make_prior, make_schedule, sampler_rule
    from theory.checks import check_memory, check_writable_dir, integer, number, numbers
    from theory.posterior.annealing import make_annealing, parse_annealing
    from theory.posterior.inits import point_init
    from theory.posterior.likelihoods import make_likelihood, make_operator
    from theory.rng import check_device_name, resolve_generator
    from theory.schedules import cosine_schedule, linear_schedule
    from theory.score_errors import make_perturbation
    rule = sampler_rule("li-ode", li_schedule(10))
    one = [[1.0]]
    return [
        (lambda: make_prior("gmm", 2, n_components=0), "n_components must be >= 1"),
        (lambda: make_prior("gmm", 2, n_components=2.5), "n_components must be an integer"),
        (lambda: make_prior("gmm", 2, seed=-1), "seed must be >= 0"),
        (lambda: make_prior("gmm", 1e5), "the gmm prior in d = 100000 needs at least"),
        (lambda: make_prior("nope", 2), "unknown prior 'nope'"),
        (lambda: make_prior(["bimodal"], 2), "unknown prior"),
        (lambda: make_prior("bimodal", 0), "d must be >= 1"),
        (lambda: make_prior("bimodal", 2.5), "d must be an integer"),
        (lambda: make_prior("bimodal", None), "d must be a number, got None"),
        (lambda: make_prior("bimodal", "abc"), "d must be a number"),
        (lambda: make_prior("bimodal", 1e12), "the bimodal prior in d = 1000000000000 needs"),
        (lambda: make_prior("gauss", float("inf")), "d must be a finite number"),
        (lambda: make_prior("subspace", 1), "it needs d >= 2"),
        (lambda: li_schedule(None), "T must be a number, got None"),
        (lambda: li_schedule(1), "T must be >= 2"),
        (lambda: li_schedule(2.5), "T must be an integer"),
        (lambda: li_schedule("abc"), "T must be a number"),
        (lambda: li_schedule(1e10), "T = 10000000000 steps needs at least"),
        (lambda: li_schedule(100, c0=-1), "c0 must be a positive"),
        (lambda: li_schedule(100, c0=1e308), "underflow"),
        (lambda: li_schedule(100, c0=float("nan")), "c0 must be a finite number"),
        (lambda: li_schedule(100, c1=0), "c1 must be a positive"),
        (lambda: li_schedule(10, c1=40), "must be < 1"),
        (lambda: li_schedule(100, c1=1e-320), "underflows"),
        (lambda: linear_schedule(0), "T must be >= 2"),
        (lambda: cosine_schedule(None), "T must be a number"),
        (lambda: make_schedule("nope", 10), "unknown schedule 'nope'"),
        (lambda: make_schedule(None, 10), "unknown schedule None"),
        (lambda: sampler_rule("li-ode", None), "needs a Schedule"),
        (lambda: sampler_rule("li-ode", "li"), "needs a Schedule"),
        (lambda: sampler_rule("nope", li_schedule(10)), "unknown sampler 'nope'"),
        (lambda: sampler_rule(None, li_schedule(10)), "unknown sampler None"),
        (lambda: make_annealing("geometric", 5, eta_max=0.1, eta_min=1), "is below eta_min"),
        (lambda: parse_annealing("geometric:0.1,1", 5), "is below eta_min"),
        (lambda: make_annealing("polynomial", 5, eta_max=0.1, eta_min=1), "is below eta_min"),
        (lambda: make_annealing("reference", eta_max=0.1, eta_min=0.4), "is below eta_min"),
        (lambda: make_annealing("constant", 0), "K must be >= 1"),
        (lambda: make_annealing("constant", 1e12), "annealing levels needs at least"),
        (lambda: make_annealing("constant", 5, eta=0), "eta must be a positive"),
        (lambda: make_annealing("nope"), "unknown annealing schedule 'nope'"),
        (lambda: make_annealing("list", etas=[]), "at least one level"),
        (lambda: parse_annealing(""), "empty annealing schedule"),
        (lambda: parse_annealing(None), "empty annealing schedule"),
        (lambda: make_likelihood("gaussian", one, [0.7], sigma=1e-300), "is below 1e-06"),
        (lambda: make_likelihood("gaussian", one, [1e308]), "y must lie in"),
        (lambda: make_likelihood("gaussian", one, [float("nan")]), "NaN or infinite"),
        (lambda: make_likelihood("gaussian", one, [0.7, 0.2]), "y has 2 entries"),
        (lambda: make_likelihood("phase", one, [0.7], sigma=-1), "sigma must be a positive"),
        (lambda: make_likelihood("logistic", one, [0.5]), "must be +1 or -1"),
        (lambda: make_likelihood("logistic", one, [1.0], lam=0), "lambda must be a positive"),
        (lambda: make_likelihood("nope", one, [0.7]), "unknown likelihood 'nope'"),
        (lambda: make_operator("random", 3, cond=0.5), "cond must be >= 1"),
        (lambda: make_operator("random", 3, m=0), "m must be >= 1"),
        (lambda: make_operator("random", 3, m=1e7), "needs at least"),
        (lambda: make_operator("mask", 3, keep_fraction=0), "keep_fraction must be a positive"),
        (lambda: make_operator("nope", 3), "unknown operator 'nope'"),
        (lambda: make_operator("identity", 0), "d must be >= 1"),
        (lambda: make_operator("identity", None), "d must be a number"),
        (lambda: make_operator("identity", 1e6), "needs at least"),
        (lambda: make_perturbation("additive-field", 1e300), "outside [0, 100]"),
        (lambda: make_perturbation("wrong-weights", 2), "outside [0, 1]"),
        (lambda: make_perturbation("step-noise", -1), "eps must be a non-negative"),
        (lambda: make_perturbation("additive-field", float("nan")), "finite number"),
        (lambda: make_perturbation("nope", 0.1), "unknown perturbation 'nope'"),
        (lambda: check_device_name("cudax"), "unknown device 'cudax'"),
        (lambda: check_device_name("tpu"), "unknown device 'tpu'"),
        (lambda: resolve_generator(1.5, None, "cpu"), "seed must be an integer"),
        (lambda: point_init("point:abc", 1), "bad point init"),
        (lambda: point_init("point:1e300", 1), "bad point init"),
        (lambda: points_measure.normalise_config({"d": 0}), "d must be >= 1"),
        (lambda: points_measure.normalise_config({"schedule": "linear", "c0": 3}),
         "c0 applies only to schedule li"),
        (lambda: points_measure.measure({"metric": "sinkhorn"}), "does not apply"),
        (lambda: points_dpnp.normalise_config({"cond": 3}), "cond applies only"),
        (lambda: points_dpnp.normalise_config({"schedule": "geometric:0.1,1"}), "is below"),
        (lambda: parse_executor(""), "empty executor"),
        (lambda: Executor("dask=tcp://127.0.0.1:1").check(), "cannot reach"),
        (lambda: check_scheduler("tcp://127.0.0.1"), "needs a host and a port"),
        (lambda: check_memory(10 ** 18, "a test request"), "a test request needs at least"),
        (lambda: check_writable_dir(__file__, "folder"), "is not a folder"),
        (lambda: integer("K", "1e400"), "K must be a finite number"),
        (lambda: number("eta", True), "eta must be a number"),
        (lambda: numbers("y", "1,2,", lo=-1, hi=1), "comma-separated"),
        (lambda: exact_distance_bad_metric(rule), "unknown metric 'nope'"),
    ]


def exact_distance_bad_metric(rule):
    from theory import exact_distance, make_prior
    return exact_distance(make_prior("bimodal", 1), rule, "nope")


LIB_CASES = _lib_cases()


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """Import what every command imports (torch, the studies) once, so that the per-case
    time is the refusal's, not the first import's."""
    import experiments.runtime.registry as registry
    for name in registry.EXPERIMENTS:
        registry.get(name)
    main(["measure", "--T", "1"])
    main(["dpnp", "--K", "0"])
    try:                                         # an executor's check may import it
        import distributed  # noqa: F401
    except ImportError:
        pass
    blocker = tmp_path_factory.mktemp("blocker") / "a-file"
    blocker.write_text("not a folder")
    return {"FILE": str(blocker), "DIR": str(blocker.parent)}


def _one_line(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and "Traceback" not in err


def test_the_table_is_large_and_names_every_subcommand():
    assert len(CLI_CASES) >= 150 and len(LIB_CASES) >= 40
    assert {c[0][0] for c in CLI_CASES if c[0]} >= {"measure", "dpnp", "posterior", "run",
                                                     "reproduce", "report", "list"}


@pytest.mark.parametrize("argv, words", CLI_CASES, ids=[" ".join(c[0]) or "(none)"
                                                        for c in CLI_CASES])
def test_bad_command_line_is_one_line_status_2_and_writes_nothing(argv, words, warm, tmp_path,
                                                                  monkeypatch, capsys):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("DIFFRATES_RESULTS", raising=False)
    argv = [a.format(**warm) for a in argv]
    capsys.readouterr()
    t0 = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert out == ""
    assert _one_line(err) and err.startswith("diffrates: error: "), err
    assert words in err, (words, err)
    assert list(cwd.iterdir()) == []                      # nothing written
    assert seconds < 1.0, f"refused after {seconds:.2f} s"


@pytest.mark.parametrize("fn, words", LIB_CASES, ids=[w for _, w in LIB_CASES])
def test_bad_library_call_is_a_one_line_value_error(fn, words, warm):
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as info:
        fn()
    assert time.perf_counter() - t0 < 1.0
    msg = str(info.value)
    assert "\n" not in msg and words in msg, (words, msg)


def test_full_disk_is_refused_before_computing(warm, tmp_path, monkeypatch, capsys):
    """A folder on a disk with too little room (the disk's free space is what the machine
    says; here it says 1 kB) is refused in one line before anything runs."""
    import collections

    import theory.checks as checks
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9, 1000))
    monkeypatch.chdir(tmp_path)
    code = main(["run", "rate-vs-d", "--fast"])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "is on a full disk: 1 kB free" in err
    assert list(tmp_path.iterdir()) == []


def test_read_only_folder_is_refused(tmp_path, warm, capsys):
    import os
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders (checked by hand on a read-only mount)")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code = main(["run", "rate-vs-d", "--results", str(ro / "r")])
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "is not writable" in err


def test_memory_refusal_uses_the_machines_memory(monkeypatch):
    """check_memory compares with what the machine has: with 1 GB available, 2 GB is refused
    and 0.5 GB accepted, the message naming both sizes; and what the machine has is
    /proc/meminfo's MemAvailable (read here a second way), or less under a cgroup limit."""
    import theory.checks as checks
    avail = checks.available_memory()
    try:
        with open("/proc/meminfo") as fh:
            mem = next(int(line.split()[1]) * 1024 for line in fh
                       if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        pytest.skip("no /proc/meminfo")
    assert avail <= 1.1 * mem and (avail >= 0.9 * mem or checks._cgroup_room() is not None)
    monkeypatch.setattr(checks, "available_memory", lambda device="cpu": 10 ** 9)
    checks.check_memory(5 * 10 ** 8, "half")
    with pytest.raises(ValueError, match=r"double needs at least 2 GB of memory, but 1 GB"):
        checks.check_memory(2 * 10 ** 9, "double")
