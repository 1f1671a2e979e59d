"""Maintenance commands run from the repository root with ``python -m scripts.<name>``."""
