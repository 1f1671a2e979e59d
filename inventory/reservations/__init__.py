"""Reservations: stock promised for a while, then shipped, released or expired."""
