"""What the command line shows a reader: every default in --help, every name in `list`,
numbers at full precision, what `measure` ran when options are left out, `report` computing
only when asked, and progress lines at a fixed interval off a terminal. About 20 s."""
import argparse
import io
import json
import time

import pytest

from experiments.cli import main as cli_main
from experiments.cli.main import main
from experiments.runtime import registry
from experiments.runtime import report as report_mod
from experiments.runtime.sweep import progress
from theory import exact_distance, li_schedule, make_prior, sampler_rule
from theory.priors import PRESETS
from theory.samplers import SAMPLERS
from theory.schedules import SCHEDULES


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _subparsers():
    p = cli_main._parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("command", ["measure", "dpnp", "run", "reproduce", "report", "list"])
def test_help_names_every_default(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")             # no line breaks inside a value
    parser = _subparsers()[command]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            continue
        assert f"(default: {action.default})" in text or \
            ("default" in (action.help or "") and str(action.default) in text), \
            (command, action.option_strings, action.default)


def test_list_shows_every_registered_name(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    names = {line.split()[0] for line in lines if line.startswith("  ")}
    for group in (PRESETS, SAMPLERS, SCHEDULES, registry.EXPERIMENTS,
                  ("tv", "kl", "hellinger", "w2", "sliced_w2", "sinkhorn", "gaussian", "phase",
                   "logistic", "additive-field")):
        assert set(group) <= names, set(group) - names
    for title in ("priors", "samplers", "schedules", "metrics", "likelihoods", "experiments"):
        assert any(line.startswith(title) for line in lines), title
    code, out, _ = run_cli(capsys, "list", "samplers")
    assert out.splitlines()[0].startswith("samplers") and "experiments" not in out


def test_measure_without_options_says_what_it_ran_at_full_precision(capsys):
    code, out, err = run_cli(capsys, "measure")
    assert code == 0
    assert "defaults used: --prior bimodal --d 1 --sampler li-ode --schedule li --T 1000 " \
           "--metric tv" in err
    ref = exact_distance(make_prior("bimodal", 1), sampler_rule("li-ode", li_schedule(1000)),
                         "tv")
    first = out.splitlines()[0]
    assert first == f"TV(q_1, law Y_1) = {ref.value!r} in [{ref.lower!r}, {ref.upper!r}]"
    code, out, err = run_cli(capsys, "measure", "--prior", "bimodal", "--d", "1", "--sampler",
                             "li-ode", "--schedule", "li", "--T", "1000", "--metric", "tv")
    assert err == "" and out.splitlines()[0] == first


def test_dpnp_prints_full_precision(capsys):
    args = ["dpnp", "--likelihood", "gaussian", "--eta", "0.6", "--K", "3"]
    code, out, _ = run_cli(capsys, *args, "--json")
    rec = json.loads(out)
    code, text, _ = run_cli(capsys, *args)
    assert code == 0
    for r in rec["per_k"]:
        a = r["to_pi_eta"]
        assert f"{a['value']!r} in [{a['lower']!r}, {a['upper']!r}]" in text
        assert a["lower"] <= a["value"] <= a["upper"]


def test_report_computes_only_when_asked(tmp_path, monkeypatch, capsys):
    ran = []

    def fake_run(name, fast=False, root=None, figures_dir="figures", executor=None):
        ran.append(name)
        return {"fits": []}
    monkeypatch.setattr(report_mod.registry, "run", fake_run)
    rep = report_mod.build_report(tmp_path)
    assert ran == [] and rep["missing"] == sorted(report_mod.SOURCES.values())
    assert all(c["verdict"] == "not computed" for r in rep["rows"] for c in r["cells"])
    code, out, err = run_cli(capsys, "report", "--results", str(tmp_path))
    assert code == 0 and ran == [] and "report --compute" in err
    assert "not computed (no results for rate-vs-T)" in out
    rep = report_mod.build_report(tmp_path, compute=True)
    assert sorted(ran) == sorted(report_mod.SOURCES.values()) and rep["missing"] == []


def test_progress_lines_at_a_fixed_interval_off_a_terminal():
    buf = io.StringIO()
    bar = progress(4, 1, "sweep", stream=buf, interval=0.05)
    time.sleep(0.32)                         # no point finishes: the lines still come
    bar.update(1)
    bar.close()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "sweep: 3 of 4 points to compute (1 cached)"
    assert 4 <= sum("1/4 points, 0 computed" in line for line in lines) <= 8
    assert lines[-1].startswith("sweep: 2/4 points, 1 computed") and \
        lines[-1].endswith("(stopped)")
    quiet = io.StringIO()
    p = progress(3, 3, "cached", stream=quiet, interval=0.01)
    p.update(0)
    p.close()
    assert quiet.getvalue() == ""


def test_progress_is_a_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    buf = Tty()
    bar = progress(2, 0, "sweep", stream=buf, interval=0.01)
    bar.update(2)
    bar.close()
    assert "2/2" in buf.getvalue() and "points to compute" not in buf.getvalue()
