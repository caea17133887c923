"""The embedded runner: the pipeline in one process on the local adapters, and what `backfill run` shows."""
