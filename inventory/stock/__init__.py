"""The stock ledger: movements, transfers and the levels they add up to."""
