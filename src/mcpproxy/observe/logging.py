"""Logging set up in one place: stdlib loggers per module, rendered by structlog.

Every module logs with ``logging.getLogger(__name__)``; this module decides how lines look
(readable console or JSON) and where they go: standard error (never standard output, which
belongs to the MCP stdio transport in ``serve --stdio``) and the main log file in the data
dir, rotated by size. Request-scoped fields bound with ``structlog.contextvars`` appear on
every line of a call.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

import structlog

MAIN_LOG_NAME = "main.log"
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5

_QUIET = (
    "httpx",
    "httpx2",
    "httpcore",
    "uvicorn.access",
    "mcp.server.streamable_http",
    "mcp.client",
    "mcp.server.lowlevel",
    "mcp.server.runner",
    "mcp.shared",
    "mcp.server.streamable_http_manager",
    "sse_starlette",
)


def setup_logging(*, level: str = "info", fmt: str = "console", log_dir: Path | None = None) -> None:
    """Route every stdlib logger through structlog's formatter to stderr and the main log file."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared, processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
        )
    )
    handlers: list[logging.Handler] = [console]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        file_handler = logging.handlers.RotatingFileHandler(
            log_dir / MAIN_LOG_NAME, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=shared,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(),
                ],
            )
        )
        handlers.append(file_handler)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
