"""`python -m bench`: run every benchmark and print their tables (``BENCH=csv|http`` for one)."""

import os

from bench import csv_transfer, http_reads

if __name__ == "__main__":
    chosen = os.environ.get("BENCH", "csv,http").split(",")
    if "csv" in chosen:
        csv_transfer.main()
    if "http" in chosen:
        http_reads.main()
