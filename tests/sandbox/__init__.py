"""Tests of the sandbox layer, with real processes."""
