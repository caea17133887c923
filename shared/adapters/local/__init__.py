"""Adapters for one machine: the in-process bus (Publisher), a folder (ObjectStore), DuckDB (Warehouse)."""
