"""Google adapters of the ports: Cloud Storage (ObjectStore), BigQuery (Warehouse), Pub/Sub (Publisher,
dead-letter sink and inbox). Each takes a ready client, so the composition root (shared/bootstrap.py)
decides credentials and endpoints, and tests point the same code at the local emulators (emulators/stack.py).
"""
