"""The loader: receives FileReady pushes, batches them, merges each batch in one transaction."""
