"""Users: accounts, roles and the rules for managing them."""
