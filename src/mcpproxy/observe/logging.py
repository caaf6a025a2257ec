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

from mcpproxy.filters.secrets import redact
from mcpproxy.secrets.masking import mask_event_dict, mask_rendered

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


def redact_rendered(logger: object, method: str, line: object) -> object:
    """Last step of every formatter: secrets of known shapes (tokens, keys, ``password=...``) that
    reached a log line anyway (an upstream's error text, a URL with credentials) are redacted."""
    if not isinstance(line, str):
        return line
    return redact(line).text


def setup_logging(
    *,
    level: str = "info",
    fmt: str = "console",
    log_dir: Path | None = None,
    max_bytes: int = LOG_MAX_BYTES,
    backups: int = LOG_BACKUPS,
) -> None:
    """Route every stdlib logger through structlog's formatter to stderr and the main log file.

    Args:
        level: Level of the root logger.
        fmt: ``console`` (readable) or ``json``.
        log_dir: Where ``main.log`` goes (``None``: standard error only).
        max_bytes: Size at which ``main.log`` is rotated.
        backups: Rotated files kept.
    """
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
            foreign_pre_chain=shared,
            # Secret values the gateway knows are masked in the fields and again in the rendered line.
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                mask_event_dict,
                renderer,
                mask_rendered,
                redact_rendered,  # type: ignore[list-item]
            ],
        )
    )
    handlers: list[logging.Handler] = [console]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        file_handler = logging.handlers.RotatingFileHandler(
            log_dir / MAIN_LOG_NAME, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=shared,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    mask_event_dict,
                    structlog.processors.JSONRenderer(),
                    mask_rendered,
                    redact_rendered,  # type: ignore[list-item]
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
