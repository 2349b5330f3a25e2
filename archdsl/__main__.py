"""`python -m archdsl …`: the `archdsl` command."""

from .cli import run

run()
