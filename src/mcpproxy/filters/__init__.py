"""Filters: shaping results on their way back to the client (truncate, later redact and sanitise)."""
