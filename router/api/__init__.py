"""Herald's HTTP API (FastAPI): service side, receiver side, websocket, static."""
