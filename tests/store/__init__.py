"""Tests of mcpproxy.store."""
