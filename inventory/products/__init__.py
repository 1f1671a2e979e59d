"""Products: the catalogue's items, with SKUs, prices and reorder levels."""
