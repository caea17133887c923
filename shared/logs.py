"""Structured JSON logs on stdout, the shape Cloud Logging reads (severity, message, trace), with the
pipeline's fields (wallet, run_id, part, uri, message_id, delivery_attempt) on every line that has them.
Set up by the service's lifespan or the CLI, never at import time.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from typing import Any

FIELDS = ("wallet", "run_id", "part", "uri", "message_id", "delivery_attempt", "subscription", "seconds")
request_context: ContextVar[dict[str, Any] | None] = ContextVar("request_context", default=None)


class JsonFormatter(logging.Formatter):
    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
        }
        ctx = request_context.get() or {}
        trace = ctx.get("trace")
        if trace and self.project:
            entry["logging.googleapis.com/trace"] = f"projects/{self.project}/traces/{trace}"
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = ctx.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_json_logging(level: str = "INFO", project: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(project))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
