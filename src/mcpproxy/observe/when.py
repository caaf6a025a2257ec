"""Reading moments the way operators type them: ``90s``, ``15m``, ``2h``, ``7d`` ago, ISO 8601, or Unix time."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, *, now: float | None = None) -> float:
    """Unix time of ``text``: a duration ago (``15m``, ``2h``, ``1d``), an ISO 8601 date or time
    (UTC when it names no zone), or a Unix time in seconds.

    Raises:
        ValueError: ``text`` is none of these.
    """
    value = text.strip()
    moment = time.time() if now is None else now
    match = _RELATIVE.fullmatch(value)
    if match:
        return moment - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use 15m, 2h, 1d, an ISO date or a Unix time)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso(ts: float | None) -> str:
    """``ts`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC); empty for ``None``."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
