"""Bulk CSV: product imports as jobs, streamed exports, and their formats."""
