"""Sales orders: stock sold to customers, allocated from what is available, then shipped."""
