"""The three Cloud Run services: thin FastAPI apps over the shared handlers."""
