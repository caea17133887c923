"""What the three FastAPI services share: the push envelope (push.py) and the app's error mapping,
request log fields and caller checks (app.py)."""
