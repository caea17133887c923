"""The warehouses' SQL, once: the statements (statements.py), the two dialects' differences (dialect.py),
the Warehouse port over them (warehouse.py) and the dead-letter table (deadletters.py)."""
