"""Benchmarks behind `make bench`: each case beside a reference measured in the same run."""
