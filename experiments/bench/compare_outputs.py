"""Every number unchanged: run ``diffrates`` (``python -m experiments.cli.main ... --json``)
for a spread of configurations in a source tree and write one JSON file per configuration;
with ``--compare DIR_A DIR_B`` say which configurations differ.

    python experiments/bench/compare_outputs.py --tree /path/to/checkout --out DIR
    python experiments/bench/compare_outputs.py --compare DIR_A DIR_B

The configurations cover the exact 1-D engines (closed form, grid, stage rules, targets,
inits, perturbations), exact products (FFT, subspace), the sample-based and push-forward
methods, DPnP and the posterior command. The provenance's ``time`` and ``host`` are dropped
(they change run to run); everything else, provenance versions included, must match exactly.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

M = ["measure"]
CONFIGS = {
    # exact, 1-D
    "gauss_d1_T10": M + ["--prior", "gauss", "--d", "1", "--T", "10"],
    "gauss_d1_kl_ddpm": M + ["--prior", "gauss", "--sampler", "ddpm", "--schedule", "linear",
                             "--T", "50", "--metric", "kl"],
    "gauss_d1_w2_cosine": M + ["--prior", "gauss", "--sampler", "ddim", "--schedule", "cosine",
                               "--T", "30", "--metric", "w2"],
    "bimodal_d1_T10": M + ["--prior", "bimodal", "--d", "1", "--T", "10"],
    "bimodal_d1_sde_T200": M + ["--prior", "bimodal", "--sampler", "li-sde", "--T", "200"],
    "bimodal_d1_kl_ode": M + ["--prior", "bimodal", "--T", "100", "--metric", "kl"],
    "bimodal_d1_hell_yan": M + ["--prior", "bimodal", "--sampler", "li-yan", "--T", "100",
                                "--metric", "hellinger"],
    "bimodal_d1_w2_accel": M + ["--prior", "bimodal", "--sampler", "accel-sde", "--T", "100",
                                "--metric", "w2"],
    "bimodal_d1_heun": M + ["--prior", "bimodal", "--sampler", "heun", "--T", "40"],
    "bimodal_d1_dpm2m": M + ["--prior", "bimodal", "--sampler", "dpm++2m", "--T", "40"],
    "bimodal_d1_data": M + ["--prior", "bimodal", "--T", "50", "--target", "data",
                            "--metric", "w2"],
    "bimodal_d1_qT": M + ["--prior", "bimodal", "--T", "50", "--init", "qT"],
    "bimodal_d1_addfield": M + ["--prior", "bimodal", "--sampler", "li-sde", "--T", "50",
                                "--perturbation", "additive-field", "--eps", "0.1"],
    "bimodal_d1_wrongw": M + ["--prior", "bimodal", "--T", "50", "--perturbation",
                              "wrong-weights", "--eps", "0.1"],
    "bimodal_d1_c0c1": M + ["--prior", "bimodal", "--T", "60", "--c0", "1.5", "--c1", "3"],
    # exact, products
    "bimodal_d10_sde": M + ["--prior", "bimodal", "--d", "10", "--sampler", "li-sde",
                            "--T", "100"],
    "gauss_d100_tv": M + ["--prior", "gauss", "--d", "100", "--T", "100"],
    "gauss_d7_kl": M + ["--prior", "gauss", "--d", "7", "--T", "100", "--metric", "kl"],
    "gauss_d3_stepnoise": M + ["--prior", "gauss", "--d", "3", "--T", "50", "--perturbation",
                               "step-noise", "--eps", "0.2"],
    "subspace_d5": M + ["--prior", "subspace", "--d", "5", "--T", "100"],
    "bimodal_d4_auto_hell": M + ["--prior", "bimodal", "--d", "4", "--T", "50",
                                 "--metric", "hellinger", "--method", "auto"],
    # sample-based and push-forward
    "bimodal_d1_w2_samples": M + ["--prior", "bimodal", "--T", "30", "--metric", "w2",
                                  "--method", "samples", "--samples", "400"],
    "gmm_d3_sw2": M + ["--prior", "gmm", "--d", "3", "--T", "20", "--metric", "sliced_w2",
                       "--method", "samples", "--samples", "300"],
    "bimodal_d2_sinkhorn": M + ["--prior", "bimodal", "--d", "2", "--T", "20", "--metric",
                                "sinkhorn", "--method", "samples", "--samples", "200"],
    "gmm_d2_w2_samples_sde": M + ["--prior", "gmm", "--d", "2", "--sampler", "li-sde", "--T",
                                  "20", "--metric", "w2", "--method", "samples",
                                  "--samples", "200", "--seed", "3"],
    "gmm_d3_pushforward_tv": M + ["--prior", "gmm", "--d", "3", "--T", "20", "--method",
                                  "pushforward", "--samples", "300"],
    "gmm_d2_pushforward_kl": M + ["--prior", "gmm", "--d", "2", "--T", "20", "--metric", "kl",
                                  "--method", "pushforward", "--samples", "300",
                                  "--prior-seed", "2"],
    "bimodal_d2_pushforward_heun": M + ["--prior", "bimodal", "--d", "2", "--sampler", "heun",
                                        "--T", "20", "--method", "pushforward",
                                        "--samples", "300"],
    # DPnP and posterior
    "dpnp_bimodal": ["dpnp", "--prior", "bimodal", "--eta", "0.3", "--K", "5"],
    "dpnp_gauss_phase_mala": ["dpnp", "--prior", "gauss", "--likelihood", "phase", "--pcs",
                              "mala", "--eta", "0.3", "--K", "3", "--n", "200"],
    "dpnp_bimodal_w2": ["dpnp", "--prior", "bimodal", "--eta", "0.3", "--K", "3", "--metric",
                        "w2", "--n", "300"],
    "posterior_tds": ["posterior", "--method", "tds", "--problem", "bimodal-1d-gaussian",
                      "--nfe", "20", "--n", "200", "--n-boot", "20"],
    "posterior_dps": ["posterior", "--method", "dps", "--problem", "bimodal-1d-gaussian",
                      "--nfe", "20", "--n", "200", "--n-boot", "20"],
}


def _clean(obj):
    """Drop what changes from run to run (wall-clock time, host name, timings)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()
                if k not in ("time", "host", "seconds", "wall_s", "elapsed", "runtime")}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def run(tree: str, out: str, only=None) -> None:
    os.makedirs(out, exist_ok=True)
    for name, args in CONFIGS.items():
        if only and name not in only:
            continue
        p = subprocess.run([sys.executable, "-m", "experiments.cli.main", *args, "--json"],
                           cwd=tree, capture_output=True, text=True)
        rec = {"args": args, "rc": p.returncode}
        if p.returncode == 0:
            rec["out"] = _clean(json.loads(p.stdout))
        else:
            rec["stderr"] = p.stderr.strip().splitlines()[-1:]
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(rec, f, indent=1, sort_keys=True)
        print(name, "rc", p.returncode, flush=True)


def compare(a: str, b: str) -> int:
    same, diff = [], []
    for name in CONFIGS:
        pa, pb = os.path.join(a, name + ".json"), os.path.join(b, name + ".json")
        if not (os.path.exists(pa) and os.path.exists(pb)):
            diff.append(name + " (missing)")
            continue
        with open(pa) as fa, open(pb) as fb:
            (same if json.load(fa) == json.load(fb) else diff).append(name)
    print(f"{len(same)} of {len(CONFIGS)} configurations identical")
    for name in diff:
        print("  differs:", name)
    return 0 if not diff else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tree", default=".")
    p.add_argument("--out")
    p.add_argument("--only", default="")
    p.add_argument("--compare", nargs=2, metavar="DIR")
    a = p.parse_args(argv)
    if a.compare:
        return compare(*a.compare)
    run(os.path.abspath(a.tree), a.out, set(filter(None, a.only.split(","))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
