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
