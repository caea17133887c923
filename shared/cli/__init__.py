"""The `backfill` command line (main.py), one module per group of commands."""
