"""Purchase orders: stock ordered from suppliers, placed, received line by line, cancelled."""
