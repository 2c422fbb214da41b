"""Shared fixtures for the diffrates test suite.

* matplotlib runs headless (Agg backend);
* ``device``: "cpu", plus "cuda" when a GPU is visible;
* ``generator``: a CPU ``torch.Generator`` seeded with 0 (a fresh one per test);
* ``device_generator``: the same on ``device``;
* ``one_thread``: torch on one intra-op thread for the test, restored afterwards (small
  tensors: threads only add overhead, and OpenMP stalls on shared CI cores); modules opt in
  with ``pytestmark = pytest.mark.usefixtures("one_thread")``.

The suite runs its numerical libraries on one thread per process, as the command line does
by default (``--threads 1``), so that the tests' local pools (one worker per core) do not
oversubscribe the 2-core CI machine. Measured: the whole run took 560 s either way there, so
this is about matching the CLI's policy, not speed. An explicit ``OMP_NUM_THREADS`` (or the
others) in the environment is kept.

The ``slow`` marker is registered in pyproject.toml and deselected by default.
"""
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")     # before numpy, scipy and torch load below

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Torch device name; every test using it runs once per available device."""
    return request.param


@pytest.fixture
def generator():
    """A CPU torch.Generator seeded with 0 (fresh for each test)."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def device_generator(device):
    """A generator seeded with 0 living on ``device`` (torch draws on a device only with a
    generator on that device)."""
    return torch.Generator(device=device).manual_seed(0)


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
