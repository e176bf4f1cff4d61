"""``python -m condensery`` (also what ``accelerate launch -m condensery`` runs)."""

from .cli import main

main()
