"""Stock counts (stocktakes): open a count, record what is on the shelves, finish it into
adjustments measured against the ledger at each line's moment, or cancel it."""
