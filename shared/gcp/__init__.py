"""Google adapters of the ports: Cloud Storage (ObjectStore), BigQuery (Warehouse), Pub/Sub (Publisher,
dead letters). Each takes a ready client, so the composition root (shared.wiring) decides credentials
and endpoints, and tests point the same code at the local emulators (emulators.stack).
"""
