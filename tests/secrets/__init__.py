"""Tests of secret references, the secret store and masking, with real files and processes."""
