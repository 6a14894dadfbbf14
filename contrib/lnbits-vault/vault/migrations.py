"""Vault tables. Amounts are msat; times are unix seconds."""


async def m001_vault(db):
    # One row: the operator wallet (the only key that may report solvency and pay dividends),
    # the service user that owns every investor vault wallet, and the lock-up tiers.
    await db.execute("""CREATE TABLE vault.settings (
        id INTEGER PRIMARY KEY, operator_wallet TEXT NOT NULL, service_user TEXT NOT NULL,
        tiers TEXT NOT NULL, created_at INTEGER NOT NULL)""")
    # Each investor wallet has one vault wallet holding its locked principal; its keys never leave here.
    await db.execute("""CREATE TABLE vault.accounts (
        investor_wallet TEXT PRIMARY KEY, vault_wallet TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL)""")
    # A deposit lot: recorded as 'pending' with its invoice before the payment, 'active' after.
    # What is left of a lot is derived (lots minus paid withdrawals), so paying a withdrawal
    # is one status change: no two writes that a crash could split.
    await db.execute("""CREATE TABLE vault.lots (
        id TEXT PRIMARY KEY, investor_wallet TEXT NOT NULL, tier TEXT NOT NULL,
        amount_msat INTEGER NOT NULL, locked_until INTEGER NOT NULL,
        status TEXT NOT NULL, payment_hash TEXT NOT NULL, created_at INTEGER NOT NULL)""")
    # status: queued -> paying (invoice stored) -> paid. seq (µs) orders the queue: first come, first served.
    await db.execute("""CREATE TABLE vault.withdrawals (
        id TEXT PRIMARY KEY, seq INTEGER NOT NULL, investor_wallet TEXT NOT NULL, amount_msat INTEGER NOT NULL,
        status TEXT NOT NULL, bolt11 TEXT, payment_hash TEXT, requested_at INTEGER NOT NULL,
        paid_at INTEGER)""")
    await db.execute("""CREATE TABLE vault.solvency (
        id INTEGER PRIMARY KEY, physical_msat INTEGER NOT NULL, liabilities_msat INTEGER NOT NULL,
        max_ratio REAL NOT NULL, reported_at INTEGER NOT NULL)""")
    # One row per (period, investor), written with its invoice before paying: a retry after a
    # crash finds it and never pays twice (LNbits also refuses to pay one internal invoice twice).
    await db.execute("""CREATE TABLE vault.payouts (
        period_key TEXT NOT NULL, investor_wallet TEXT NOT NULL, amount_msat INTEGER NOT NULL,
        status TEXT NOT NULL, bolt11 TEXT NOT NULL, payment_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL, paid_at INTEGER, PRIMARY KEY (period_key, investor_wallet))""")


async def m002_multi_worker_guards(db):
    """Guards that hold with several LNbits workers on one database (issue 12 item 13).

    - withdrawals.n numbers each investor's withdrawals; UNIQUE(investor_wallet, n) lets only one of
      two requests that read the same position (and so passed the same lock-up check) be written.
    - withdrawals.claim/claimed_at: a payer claims a row with a conditional UPDATE; a claim older than
      the lease is taken as a crashed payer and released, never a payment still in flight.
    - payouts.claim/claimed_at: the same claim for dividend lines.
    - settings.pending_operator and operator_log: the authenticated transfer of the operator role.
    """
    for column in ("n INTEGER", "claim TEXT", "claimed_at INTEGER"):
        await db.execute(f"ALTER TABLE vault.withdrawals ADD COLUMN {column}")
    counts: dict = {}
    for row in await db.fetchall("SELECT id, investor_wallet FROM vault.withdrawals ORDER BY seq"):
        counts[row["investor_wallet"]] = counts.get(row["investor_wallet"], 0) + 1
        await db.execute("UPDATE vault.withdrawals SET n = :n WHERE id = :id",
                         {"n": counts[row["investor_wallet"]], "id": row["id"]})
    if db.type == "SQLITE":
        await db.execute("CREATE UNIQUE INDEX vault.withdrawals_investor_n ON withdrawals (investor_wallet, n)")
    else:
        await db.execute("CREATE UNIQUE INDEX withdrawals_investor_n ON vault.withdrawals (investor_wallet, n)")
    for column in ("claim TEXT", "claimed_at INTEGER"):
        await db.execute(f"ALTER TABLE vault.payouts ADD COLUMN {column}")
    await db.execute("ALTER TABLE vault.settings ADD COLUMN pending_operator TEXT")
    await db.execute("""CREATE TABLE vault.operator_log (
        seq INTEGER NOT NULL, from_wallet TEXT, to_wallet TEXT NOT NULL, how TEXT NOT NULL,
        at INTEGER NOT NULL)""")
