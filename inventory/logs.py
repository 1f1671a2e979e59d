"""Logging: JSON lines in production, readable lines in development, a request id on each.

The request id and the signed-in user live in context variables set by the
request middleware and the auth dependency; the log record factory copies them
onto every record, so any logger anywhere in a request says which request it was. The
same configuration serves ``inventory serve`` and gunicorn (its
``logconfig_dict``), so gunicorn's own lines are JSON too.
"""

from __future__ import annotations

import logging
import logging.config
import os
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

from inventory.config import Environment, Settings

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("user_id", default=None)

ACCESS_LOGGER = "inventory.access"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


_plain_record = logging.getLogRecordFactory()


def _record_in_context(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record, for every handler, says which request and user it came from."""
    record = _plain_record(*args, **kwargs)
    record.request_id = request_id_var.get()
    record.user_id = user_id_var.get()
    return record


# At import: gunicorn's master imports this module for its log configuration too.
if getattr(_plain_record, "__name__", "") != _record_in_context.__name__:
    logging.setLogRecordFactory(_record_in_context)


_TOKEN_IN_QUERY = re.compile(r"((?:access_)?token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Uvicorn logs a WebSocket's path with its query string, and the live feeds take
    ``?token=``: no line leaves with a bearer token in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        values = args.values() if isinstance(args, Mapping) else args or ()
        if "token=" not in str(record.msg) and not any("token=" in str(v) for v in values):
            return True  # the common case, without formatting the message twice
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _TOKEN_IN_QUERY.sub(r"\1[redacted]", message), None
        return True


def logging_config(settings: Settings, level: str | int = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for this environment (also gunicorn's ``logconfig_dict``)."""
    return _config(settings.env is Environment.production, level)


def _config(production: bool, level: str | int) -> dict[str, Any]:
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
            # Uvicorn's copy of a message with terminal colour codes in it.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
        if production
        else {"format": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "default",
        "filters": ["redact_tokens"],
    }
    quiet = {"level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_tokens": {"()": RedactTokens}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            # Everything goes to the root handler, once; our access line replaces theirs.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "gunicorn.error": {"handlers": [], "propagate": True},
            "gunicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "celery": {"handlers": [], "propagate": True},
            "sqlalchemy.engine": quiet,
            "httpx": quiet,
        },
    }


def configure_logging(settings: Settings, level: str | int = "INFO") -> None:
    logging.config.dictConfig(logging_config(settings, level))


def writes_json(settings: Settings | None) -> bool:
    """Whether a command's lines must be JSON: in production, which the raw INVENTORY_ENV
    tells when the settings themselves could not be read."""
    if settings is not None:
        return settings.env is Environment.production
    return os.environ.get("INVENTORY_ENV", "").strip().lower() == Environment.production


def configure_startup_logging(settings: Settings | None) -> None:
    """Logging for a command's own lines before it serves, in the service's format."""
    production = writes_json(settings)
    logging.config.dictConfig(_config(production, "INFO"))
    if production:
        sys.excepthook = _log_uncaught


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    """A traceback at start-up is one JSON record too, not lines the log pipeline splits."""
    logging.getLogger("inventory").critical(
        "uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, traceback)
    )
