"""Support code for tests that talk to real upstream MCP servers and processes.

- ``paths``: where the installed upstream servers are (``scripts/install-test-deps.sh``).
- ``net``: loopback ports.
- ``procs``: start a real process, wait until it is ready, always tear it down.
- ``servers``: run our fixture servers (``tests/fixtures``) and the installed ones.
"""
