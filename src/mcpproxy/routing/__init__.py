"""Routing: names <-> (server, tool) and the aggregated catalog. No I/O."""
