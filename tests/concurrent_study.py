"""A tiny study for the fault tests (imported by subprocesses; not collected by pytest): its
points are value = x^2 after a short sleep, each computation logged (pid and x) to the file
named by DIFFRATES_TEST_LOG, so a test can count how often each point was computed."""
import os
import time

from theory.figures import new_figure, save_figure

NAME = "concurrent"
CLAIM = "x^2 is x^2"
NORMALISE = None
N_POINTS = 12
SLEEP_S = float(os.environ.get("DIFFRATES_TEST_SLEEP", "0.15"))


def configs(fast):
    return [{"x": x} for x in range(N_POINTS)]


def compute(cfg):
    time.sleep(SLEEP_S)
    log = os.environ.get("DIFFRATES_TEST_LOG")
    if log:
        with open(log, "a") as fh:              # one short O_APPEND write: atomic
            fh.write(f"{os.getpid()} {cfg['x']}\n")
    return {"value": float(cfg["x"]) ** 2}


def summarise(records, fast):
    return {"values": [r["result"]["value"] for r in records],
            "total": sum(r["result"]["value"] for r in records)}


def figure(summary, figures_dir):
    fig, ax = new_figure()
    ax[0, 0].plot(summary["values"])
    return save_figure(fig, os.path.join(figures_dir, "concurrent.png"))
