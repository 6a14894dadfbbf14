"""The price learner's per-channel state (table `price_state`) and the forward attempts it reads.

One row per channel: the learner's state (revops/facts/price.py) as JSON text. Rows are read
back as raw text so that the caller can refuse a corrupt one with a log line and start that
channel fresh (issue #14: never a crash).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from revops.store.db import transaction

SCHEMA = (
    """CREATE TABLE price_state (
        scid TEXT PRIMARY KEY,
        state_json TEXT NOT NULL,
        updated_s REAL NOT NULL
    ) WITHOUT ROWID""",
)

# Resolved forwards out of each channel in (since, now]: settled (kind 1), failed downstream
# (2) and local failures for liquidity or slots (3) all accepted our advertised fee; policy
# failures (4: fee insufficient, the sender had an old fee) and pending rows (0) do not count.
# A forward smaller than the dust size counts as its share of one (size / dust): a flood of
# 1-10 sat HTLCs, jamming or probing, comes whatever the fee, and counted whole it told the
# learner that no fee was too dear (htlc-flood: most channels priced at the ceiling). The size
# is out_msat, else in_msat (a local failure may have no out_msat); with neither, one whole.
# Reads the partial index forwards_t (kind != 0).
_ATTEMPTS = """SELECT out_channel,
  SUM(CASE WHEN :dust <= 0 OR size IS NULL THEN 1.0 ELSE MIN(1.0, MAX(0.0, size) / :dust) END)
FROM (SELECT out_channel, COALESCE(NULLIF(out_msat, 0), in_msat) AS size FROM forwards INDEXED BY forwards_t
      WHERE t > :since AND t <= :now AND kind != 0 AND kind IN (1, 2, 3) AND out_channel IS NOT NULL)
GROUP BY out_channel"""


class PriceStore:
    """Mixin of `Store` (store.py): the learner's state and its observations."""

    def _conn(self) -> sqlite3.Connection:  # provided by Store
        raise NotImplementedError

    #: scid -> (JSON text, state) of what this process saved last (save_price_states)
    _price_saved: dict[str, tuple[str, Any]] = {}

    def price_states(self) -> dict[str, str]:
        """Returns scid -> the stored state's JSON text (unparsed: the caller checks it)."""
        return dict(self._conn().execute("SELECT scid, state_json FROM price_state"))

    def saved_price_state(self, scid: str, text: str) -> Any:
        """Returns the state this process saved for scid when `text` is still what it wrote (the
        caller need not parse and check it again: a fee cycle's largest read), else None."""
        saved = self._price_saved.get(scid)
        return saved[1] if saved is not None and saved[0] == text else None

    def save_price_states(self, states: dict[str, Any], at_s: float) -> None:
        """Replaces the stored state of these channels, in one transaction. The states are
        remembered as saved (saved_price_state): the caller does not change them afterwards."""
        texts = {scid: json.dumps(s, allow_nan=False, separators=(",", ":")) for scid, s in states.items()}
        self._price_saved = {}  # a failed write leaves nothing remembered
        with transaction(self._conn()) as conn:
            conn.executemany("INSERT OR REPLACE INTO price_state (scid, state_json, updated_s) "
                             "VALUES (?, ?, ?)", [(scid, text, float(at_s)) for scid, text in texts.items()])
        self._price_saved = {scid: (text, states[scid]) for scid, text in texts.items()}

    def forward_attempts(self, since_s: float, now_s: float, dust_msat: float = 0.0) -> dict[str, float]:
        """Returns out scid -> forwards that accepted its fee and resolved in (since, now], those
        smaller than `dust_msat` counted as their share of one (0: every forward counts whole)."""
        return dict(self._conn().execute(_ATTEMPTS, {"dust": float(dust_msat), "since": float(since_s),
                                                     "now": float(now_s)}))
