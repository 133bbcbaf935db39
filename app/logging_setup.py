"""Structured logs: one JSON object per line on stdout, with the request id of the request
that emitted it.

Only what an operator needs goes into a line: time, level, logger, message, and the
request's id, method, route *template* (``/v1/people/{external_id}``, never the raw path,
which carries external ids that are often e-mail addresses), status and duration.
Bodies, names and e-mails are never logged; code that wants to mention an external id
does so at DEBUG level only.

``logging_config()`` is a ``dictConfig`` dictionary, so that uvicorn applies the same
configuration in every worker process it spawns (``kizuna serve --workers N``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import traceback
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["json", "text"]

# Set by the request middleware for the duration of one request (and inherited by the
# tasks it starts), read by the formatter: every line logged while serving a request
# carries its id without the caller passing it along.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("kizuna_request_id", default=None)

# Attributes of a LogRecord that are the record's own machinery, not "extra" fields.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)

# The extra fields a log call may attach (``log.info("…", extra={"route": …})``). A fixed
# allow-list keeps personal data out even if a caller passes a whole object by mistake.
ALLOWED_EXTRA_FIELDS = frozenset(
    {
        "method", "route", "status", "duration_ms", "client_request_id",
        "round_id", "program_id", "round_status", "outcome",
        "webhook_id", "delivery_id", "event_type", "attempt", "status_code", "error",
        "worker", "revision", "count",
    }
)  # fmt: skip


def install_request_id_on_records() -> None:
    """Stamp every log record with the current request id *when it is created*, so the id
    survives handlers that format later or elsewhere (queues, pytest's caplog). Idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "kizuna_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return record

    factory.kizuna_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", …extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key in ALLOWED_EXTRA_FIELDS and key not in _RECORD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a developer's terminal: the same fields, readable."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        extras = " ".join(
            f"{key}={value}" for key, value in record.__dict__.items() if key in ALLOWED_EXTRA_FIELDS
        )
        prefix = f"[{request_id}] " if request_id else ""
        return f"{prefix}{line}" + (f" {extras}" if extras else "")


def logging_config(level: str = "INFO", log_format: LogFormat = "json", stream: str = "stdout") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary for the service, its CLI and uvicorn.
    Servers log to stdout (the container's log); one-shot commands to stderr, keeping
    stdout for their answer."""
    level = level.upper()
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if log_format == "json"
        else {"()": TextFormatter, "fmt": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kizuna": formatter},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "kizuna", "stream": f"ext://sys.{stream}"}
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # uvicorn's own loggers go through the root handler (JSON too). Its access log is
            # replaced by the request middleware's line, which knows the route template and
            # request id, so it is silenced rather than duplicated.
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # SQL statements carry parameter values (personal data): never above WARNING here.
            "sqlalchemy.engine": {"level": "WARNING", "handlers": [], "propagate": True},
            "alembic": {"level": level, "handlers": [], "propagate": True},
            "alembic.runtime.plugins": {"level": "WARNING", "handlers": [], "propagate": True},
            # httpx logs every URL it calls at INFO: people paths (external ids) in the demo,
            # webhook URLs (which may embed a token) in deliveries.
            "httpx": {"level": "WARNING", "handlers": [], "propagate": True},
            "httpcore": {"level": "WARNING", "handlers": [], "propagate": True},
            # The database drivers log statements with their parameters at DEBUG.
            "aiosqlite": {"level": "WARNING", "handlers": [], "propagate": True},
            "psycopg": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(level: str = "INFO", log_format: LogFormat = "json", stream: str = "stdout") -> None:
    """Install the configuration in this process (CLI commands other than ``serve``)."""
    install_request_id_on_records()
    logging.config.dictConfig(logging_config(level, log_format, stream))
