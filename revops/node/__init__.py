"""lightningd access: the RPC wrapper and live snapshot capture."""
