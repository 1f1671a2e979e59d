"""Long responses (CSV downloads, live feeds): per-user slots and the cut-off of idle clients."""
