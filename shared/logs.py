"""Structured JSON logs on stdout, the shape Cloud Logging reads (severity, message, trace), with the
pipeline's fields (wallet, run_id, part, uri, message_id, delivery_attempt) on every line that has them.
Set up by the service's lifespan or the CLI, never at import time.

Both formatters here (JSON for the services, `RedactingFormatter` for the CLI's file log) pass every
line through `redact` (shared/core/errors.py): the API key and bearer tokens never reach a log, whoever
logged them. The services' uvicorn loggers are routed through the same handler.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from typing import Any

from shared.core.errors import redact

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
FIELDS = ("wallet", "run_id", "part", "uri", "lookup", "message_id", "delivery_attempt", "subscription", "seconds")
request_context: ContextVar[dict[str, Any] | None] = ContextVar("request_context", default=None)


class JsonFormatter(logging.Formatter):
    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": redact(record.getMessage()),
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
                entry[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["stack_trace"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["stack_trace"] = redact(record.exc_text)
        return json.dumps(entry, default=str)


class RedactingFormatter(logging.Formatter):
    """A plain-text formatter whose lines (message, stack trace) are redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_json_logging(level: str = "INFO", project: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(project))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:  # uvicorn configured its own handlers before the lifespan ran
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
