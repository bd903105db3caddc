"""The one structlog configuration, applied once per process.

Logs go to standard error as structured events (``heater_commanded heater=3
duty=0.4``): JSON lines when standard error is not a terminal (the supervisor's
children, CI, a log collector), a readable console rendering when it is.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

_configured = False


def configure_logging(process: str, *, level: str | None = None, json: bool | None = None) -> None:
    """Configure structlog for this process and bind ``process=<process>``.

    ``level`` defaults to ``$FSW_LOG_LEVEL`` or ``info``; ``json`` defaults to
    "standard error is not a terminal". Calling it again rebinds the process
    name and changes nothing else.
    """
    global _configured  # noqa: PLW0603 - one configuration per process by design
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(process=process, pid=os.getpid())
    if _configured:
        return
    _configured = True
    level_name = (level or os.environ.get("FSW_LOG_LEVEL") or "info").upper()
    level_number = logging.getLevelName(level_name)
    if not isinstance(level_number, int):
        level_number = logging.INFO
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(**bound: Any) -> Any:
    """Return a structlog logger with ``bound`` context."""
    return structlog.get_logger().bind(**bound)
