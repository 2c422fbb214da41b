"""The tightness report: verdict logic and the table built from experiment summaries."""
import json

import pytest

from experiments.runtime.report import BOUNDS, _verdict, build_report, to_csv


@pytest.mark.parametrize("b, lo, hi, var, expected", [
    (-1.0, -1.02, -0.98, "T", "consistent"),
    (-0.5, -0.9, -0.8, "T", "bound loose"),
    (-1.0, -0.8, -0.7, "T", "violated"),
    (2.0, 0.4, 0.6, "d", "bound loose"),
    (1.0, 1.5, 1.7, "d", "violated"),
    (1.0, 1.5, 1.7, "eps", "bound loose"),     # higher order in eps -> 0 is better
    (1.0, 0.5, 0.7, "eps", "violated"),
    (-1.0, -0.96, -0.955, "T", "consistent"),  # within the 0.05 log-factor tolerance
])
def test_verdicts(b, lo, hi, var, expected):
    assert _verdict(b, lo, hi, var).startswith(expected)


def _fit(k, lo, hi, x0=1, x1=100):
    return {"exponent": k, "ci": [lo, hi], "x_range": [x0, x1]}


def test_report_from_summaries(tmp_path):
    def write(name, fits):
        p = tmp_path / name
        p.mkdir()
        (p / "summary.json").write_text(json.dumps({"fits": fits}))
    write("rate-vs-T", [
        {"prior": "bimodal", "d": 1, "sampler": s, "fit": _fit(-0.8, -0.82, -0.78),
         "log_corrected_fits": {"tv_over_logT^1": _fit(-1.0, -1.01, -0.99),
                                "tv_over_logT^2": _fit(-1.1, -1.12, -1.08)}}
        for s in ("li-ode", "li-sde", "accel-sde", "accel-ode")])
    write("rate-vs-d", [{"prior": "bimodal", "sampler": s, "fit": _fit(0.5, 0.49, 0.51)}
                        for s in ("li-ode", "li-sde")])
    write("score-error", [{"d": 1, "sampler": s, "fit": _fit(1.0, 0.9, 1.1)}
                          for s in ("li-ode", "li-sde")])
    write("rate-vs-ambient-d", [
        {"sampler": "li-yan", "vs": "d", "fit": _fit(0.0, -0.01, 0.01)},
        {"sampler": "li-yan", "vs": "T", "fit": _fit(-0.8, -0.85, -0.75),
         "log_corrected_fits": {"tv_over_logT^1": _fit(-0.98, -0.99, -0.97)}}])
    rep = build_report(tmp_path)
    measured = [b for b in BOUNDS if b["sampler"] is not None]
    assert len(rep["rows"]) == len(measured) == len(BOUNDS)      # every row of THEORY §3
    assert rep["not_measured"] == []
    accel = next(r for r in rep["rows"] if r["kind"] == "accelerated ODE")
    assert accel["cells"][0]["log_corrected"]["k"] == 2          # deterministic: log^2
    first = rep["rows"][0]            # LWCC deterministic: T uses the log^2 fit (-1.1)
    t_cell = next(c for c in first["cells"] if c["var"] == "T")
    assert t_cell["log_corrected"]["k"] == 2 and t_cell["verdict"].startswith("bound loose")
    d_cell = next(c for c in first["cells"] if c["var"] == "d")
    assert d_cell["verdict"].startswith("bound loose by a factor d^1.44")
    assert (tmp_path / "report" / "report.md").read_text().count("\n| ") == len(measured)
    assert to_csv(rep).count("\n") == 1 + sum(len(r["cells"]) for r in rep["rows"])


def test_report_names_rows_without_measurements(tmp_path, monkeypatch):
    """A bound with no sampler to measure it is listed as not measured, with the reason."""
    import experiments.runtime.report as report
    extra = {"result": "Someone 2030", "kind": "hypothetical", "bound": "1/T^3",
             "exponents": {"T": -3.0}, "sampler": None, "why": "no such sampler yet"}
    monkeypatch.setattr(report, "BOUNDS", report.BOUNDS + [extra])
    p = tmp_path / "rate-vs-T"
    p.mkdir()
    (p / "summary.json").write_text(json.dumps({"fits": []}))
    for name in ("rate-vs-d", "score-error", "rate-vs-ambient-d"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"fits": []}))
    rep = report.build_report(tmp_path)
    assert [m["why"] for m in rep["not_measured"]] == ["no such sampler yet"]
    assert "Not measured yet: Someone 2030" in (tmp_path / "report" / "report.md").read_text()
