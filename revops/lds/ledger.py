"""The LDS tables in the plugin's database (migration 6): snapshots, solvency checks, periods and
payout lines. A period and all its lines are written in one transaction before any payment."""

from __future__ import annotations

import json
from pathlib import Path

from revops.store.db import Connections, transaction

NODE_CAPITAL = "node:capital"  # local balance of usable channels + confirmed on-chain
NODE_LOCAL = "node:local"
NODE_ONCHAIN = "node:onchain"


class Ledger:
    def __init__(self, db_path: str | Path):
        # Its own connections to the store's file (WAL: readers never block the writer).
        self._conns = Connections(Path(db_path))

    def conn(self):
        return self._conns.get()

    def close(self) -> None:
        self._conns.close_all()

    # -- snapshots ----------------------------------------------------------------------------

    def record_snapshot(self, at_s: float, rows: list[tuple[str, str | None, str | None, int]]) -> None:
        """rows: (key, wallet_id, tier, balance_msat); a key absent from a snapshot has left (0)."""
        with transaction(self.conn()) as c:
            present = {key for key, *_ in rows}
            last = c.execute("SELECT key, wallet_id, tier, balance_msat FROM lds_snapshots s WHERE at_s = "
                             "(SELECT max(at_s) FROM lds_snapshots WHERE key = s.key)").fetchall()
            gone = [(r["key"], r["wallet_id"], r["tier"], 0) for r in last
                    if r["key"] not in present and r["balance_msat"] != 0]
            c.executemany("INSERT OR REPLACE INTO lds_snapshots (key, at_s, wallet_id, tier, balance_msat) "
                          "VALUES (?, ?, ?, ?, ?)", [(k, at_s, w, t, b) for k, w, t, b in rows + gone])

    def last_snapshot_s(self) -> float | None:
        return self.conn().execute("SELECT max(at_s) FROM lds_snapshots").fetchone()[0]

    def first_snapshot_s(self) -> float | None:
        return self.conn().execute("SELECT min(at_s) FROM lds_snapshots").fetchone()[0]

    def series(self, until_s: float) -> dict[str, dict]:
        """{key: {"wallet_id", "tier", "samples": [(at_s, msat), ...]}} of samples before until_s."""
        out: dict[str, dict] = {}
        for r in self.conn().execute("SELECT key, at_s, wallet_id, tier, balance_msat FROM lds_snapshots "
                                     "WHERE at_s < ? ORDER BY key, at_s", (until_s,)):
            entry = out.setdefault(r["key"], {"wallet_id": r["wallet_id"], "tier": r["tier"], "samples": []})
            entry["samples"].append((r["at_s"], r["balance_msat"]))
        return out

    # -- solvency -----------------------------------------------------------------------------

    def record_solvency(self, s) -> None:
        with transaction(self.conn()) as c:
            c.execute("INSERT OR REPLACE INTO lds_solvency (at_s, liabilities_msat, physical_msat, ratio, halted, "
                      "detail) VALUES (?, ?, ?, ?, ?, ?)", (s.at_s, s.liabilities_msat, s.physical_msat, s.ratio,
                                                            int(s.halted), json.dumps(s.to_json())))
            c.execute("DELETE FROM lds_solvency WHERE at_s < ?", (s.at_s - 30 * 86400,))

    def last_solvency(self) -> dict | None:
        row = self.conn().execute("SELECT detail FROM lds_solvency ORDER BY at_s DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    # -- periods ------------------------------------------------------------------------------

    def last_period(self) -> dict | None:
        row = self.conn().execute("SELECT * FROM lds_periods ORDER BY end_s DESC LIMIT 1").fetchone()
        return _period(row)

    def unpaid_periods(self) -> list[dict]:
        rows = self.conn().execute("SELECT * FROM lds_periods WHERE status = 'recorded' ORDER BY end_s").fetchall()
        return [_period(r) for r in rows]

    def periods(self, limit: int = 30) -> list[dict]:
        rows = self.conn().execute("SELECT * FROM lds_periods ORDER BY end_s DESC LIMIT ?", (limit,)).fetchall()
        return [_period(r) for r in rows]

    def lines(self, period_key: str) -> list[dict]:
        return [dict(r) for r in self.conn().execute(
            "SELECT * FROM lds_payout_lines WHERE period_key = ? ORDER BY wallet_id", (period_key,))]

    def record_period(self, period: dict, lines: list[dict], at_s: float) -> None:
        """The period and every line, in one transaction; status 'paid' at once when nothing is owed.
        The primary key makes a second record of the same period fail: it can never be paid twice."""
        status = "recorded" if lines else "paid"
        with transaction(self.conn()) as c:
            c.execute("INSERT INTO lds_periods (period_key, start_s, end_s, status, net_msat, deficit_in_msat, "
                      "deficit_out_msat, distributable_msat, investors_msat, detail, recorded_at_s, paid_at_s) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (period["period_key"], period["start_s"], period["end_s"], status, period["net_msat"],
                       period["deficit_in_msat"], period["deficit_out_msat"], period["distributable_msat"],
                       sum(line["amount_msat"] for line in lines), json.dumps(period["detail"]), at_s,
                       None if lines else at_s))
            c.executemany("INSERT INTO lds_payout_lines (period_key, wallet_id, amount_msat, twab_msat, share, "
                          "status) VALUES (?, ?, ?, ?, ?, 'recorded')",
                          [(period["period_key"], x["wallet_id"], x["amount_msat"], x["twab_msat"], x["share"])
                           for x in lines])

    def mark_paid(self, period_key: str, paid: dict[str, str | None], at_s: float) -> None:
        with transaction(self.conn()) as c:
            c.executemany("UPDATE lds_payout_lines SET status = 'paid', payment_hash = ? "
                          "WHERE period_key = ? AND wallet_id = ?",
                          [(h, period_key, w) for w, h in paid.items()])
            left = c.execute("SELECT count(*) FROM lds_payout_lines WHERE period_key = ? AND status != 'paid'",
                             (period_key,)).fetchone()[0]
            if left == 0:
                c.execute("UPDATE lds_periods SET status = 'paid', paid_at_s = ? WHERE period_key = ?",
                          (at_s, period_key))

    def paid_total_msat(self) -> int:
        return self.conn().execute("SELECT coalesce(sum(amount_msat), 0) FROM lds_payout_lines "
                                   "WHERE status = 'paid'").fetchone()[0]


def _period(row) -> dict | None:
    if row is None:
        return None
    out = dict(row)
    out["detail"] = json.loads(out["detail"])
    return out
