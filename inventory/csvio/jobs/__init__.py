"""Import jobs: their records, one run of a job under a lease, and the sweeps."""
