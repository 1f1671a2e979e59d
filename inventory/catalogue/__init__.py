"""Categories, suppliers and warehouses: the named catalogue entries."""
