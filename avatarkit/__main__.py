"""``python -m avatarkit`` (also what ``torchrun -m avatarkit`` runs)."""

from avatarkit.cli.app import main

main()
