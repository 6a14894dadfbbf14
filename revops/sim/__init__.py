"""Simulated lightningd: a plugin-protocol harness and a market model of a routing node."""
