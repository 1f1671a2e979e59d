"""Inventory service: catalogue, warehouses and a stock ledger behind REST and GraphQL."""

__version__ = "0.1.0"
