"""The plugin's SQLite store: forwards, rollups, state, overrides, journal, peers, meta.

`Store(path)` opens (creating and migrating) the database; see store.py for the API and
docs/store.md for the schema and retention.
"""

from revops.store.store import Store

__all__ = ["Store"]
