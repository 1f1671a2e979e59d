"""`python -m bench` (`make bench`): the benchmark suite; see bench/suite.py."""

from bench import suite

if __name__ == "__main__":
    suite.main()
