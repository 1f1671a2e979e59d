"""`python -m bench`: run every benchmark and print one table."""

from bench.csv_transfer import main

if __name__ == "__main__":
    main()
