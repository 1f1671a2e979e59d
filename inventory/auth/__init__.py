"""Signing in: the token endpoint and its brute-force throttle."""
