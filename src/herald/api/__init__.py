"""HTTP API: thin routers that parse, authorize and call the engine."""
