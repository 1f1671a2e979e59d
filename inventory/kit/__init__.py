"""Shared plumbing for the domain packages: pagination and schema helpers."""
