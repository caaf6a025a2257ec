"""Tests of mcpproxy.config."""
