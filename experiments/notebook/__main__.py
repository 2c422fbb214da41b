"""``python -m experiments.notebook [PATH]``: rebuild the notebook from the registry."""
import sys

from .build import build

print(build(*sys.argv[1:]))
