"""The adapters of shared/ports, grouped by kind: local/ (one machine), gcp/ (Google Cloud), sources/ (the
trade APIs), sql/ (what the two warehouses share)."""
