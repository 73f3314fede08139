"""``python -m hwbench``: the ``hwbench`` command, for a Python whose scripts are not on PATH."""
from hwbench.cli import console

console()
