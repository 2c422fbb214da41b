"""Every block of README.md runs as pasted.

Python blocks (```python) run each on its own in a fresh interpreter namespace; shell
blocks (indented by four spaces) run command by command, ``diffrates`` being this checkout's
command line, in an empty folder; where the README shows a command's output (``$ `` before
the command) the output must be what it prints. Blocks that are long by design or need what
a test machine does not have are listed in SKIP with the reason; everything else runs
(about 30 s in all)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# (pattern matched at the start of a command, why it does not run here)
SKIP = [
    (r"python -c \"import torch\"", "installs packages (the set-up commands)"),
    (r"pip install", "installs packages"),
    (r"diffrates reproduce", "the whole reproduction: minutes (fast) to hours (full)"),
    (r"diffrates run ", "runs a whole experiment: minutes"),
    (r"python -m pytest", "the test suite itself"),
    (r"python -m experiments\.bench", "benchmarks: minutes, and diffusers for one of them"),
]
SKIP_PYTHON = [("dask_jobqueue", "needs a SLURM/PBS cluster and dask-jobqueue")]


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


COMMAND = re.compile(r"^(\$ )?(diffrates|python|pip) ")


def shell_blocks():
    """Indented blocks outside fenced code whose first line is a command (``diffrates``,
    ``python``, ``pip``, or ``$ `` and one of them): lists of lines, indent removed."""
    text = re.sub(r"```.*?```", "", README, flags=re.S)
    blocks, cur = [], []
    for line in text.split("\n") + [""]:
        if line.startswith("    "):
            cur.append(line[4:])
            continue
        if cur and COMMAND.match(cur[0]):
            blocks.append(cur)
        cur = []
    return blocks


def commands():
    """(command, shown output lines or None), joining continued lines."""
    out = []
    for block in shell_blocks():
        i = 0
        while i < len(block):
            line = block[i]
            shown = line.startswith("$ ")
            cmd = line[2:] if shown else line
            while cmd.rstrip().endswith("\\") and i + 1 < len(block):
                i += 1
                cmd = cmd.rstrip()[:-1] + " " + block[i].strip()
            i += 1
            expect = None
            if shown:
                expect = []
                while i < len(block) and not block[i].startswith("$ "):
                    expect.append(block[i])
                    i += 1
            cmd = cmd.split("  #")[0].strip()
            if cmd:
                out.append((cmd, expect))
    return out


def _skip_reason(cmd, rules):
    return next((why for pat, why in rules if re.search(pat, cmd)), None)


def test_readme_blocks_found():
    cmds = [c for c, _ in commands()]
    assert any(c.startswith("diffrates measure") for c in cmds)
    assert any(c.startswith("diffrates dpnp") for c in cmds)
    assert len(python_blocks()) >= 4


@pytest.mark.parametrize("i", range(len(python_blocks())))
def test_python_block_runs_as_pasted(i):
    code = python_blocks()[i]
    why = _skip_reason(code, SKIP_PYTHON)
    if why:
        pytest.skip(why)
    exec(compile(code, f"README.md python block {i}", "exec"), {"__name__": f"readme_{i}"})


@pytest.mark.parametrize("cmd, expect", commands(), ids=[c[:40] for c, _ in commands()])
def test_shell_command_runs_as_pasted(cmd, expect, tmp_path):
    why = _skip_reason(cmd, SKIP)
    if why:
        pytest.skip(why)
    assert cmd.startswith("diffrates "), f"a README command the test does not know: {cmd}"
    assert "[" not in cmd, f"literal brackets in a command: {cmd}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    proc = subprocess.run(f"{sys.executable} -m experiments.cli.main {cmd[len('diffrates '):]}",
                          shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (cmd, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, (cmd, proc.stderr[-2000:])
    if expect:
        got = [line.rstrip() for line in proc.stdout.strip("\n").split("\n")]
        want = [line.rstrip() for line in expect if line.strip()]
        assert len(got) >= len(want) and all(
            _same_up_to_rounding(g, w) for g, w in zip(got, want)), (cmd, got)


_NUMBER = re.compile(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?")


def _same_up_to_rounding(got: str, want: str, rel: float = 1e-9) -> bool:
    """The same text, and the same numbers up to a relative 1e-9: the README prints every
    digit of a float, and the last few differ between CPUs (vector widths change the order
    of floating-point sums), far below any stated error."""
    if _NUMBER.sub("#", got) != _NUMBER.sub("#", want):
        return False
    return all(abs(float(a) - float(b)) <= rel * max(abs(float(a)), abs(float(b)), 1e-300)
               for a, b in zip(_NUMBER.findall(got), _NUMBER.findall(want)))
