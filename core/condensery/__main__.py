"""``python -m condensery`` (also what ``accelerate launch -m condensery`` runs)."""

from ._engine.cli import main

main()
