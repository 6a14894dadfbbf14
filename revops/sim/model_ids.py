"""Deterministic identifiers (pubkeys, txids, channel ids, payment hashes) from a seeded RNG.

Every identifier the simulator invents comes from here, so the same seed gives byte-identical
RPC output. None of them is cryptographically meaningful; they only have CLN's shapes.
"""

from __future__ import annotations

import random


def hex32(rng: random.Random) -> str:
    """Return 64 lowercase hex characters (a txid, channel id or payment hash)."""
    return "%064x" % rng.getrandbits(256)


def pubkey(rng: random.Random) -> str:
    """Return a 66-hex compressed-pubkey-shaped string starting 02 or 03."""
    return ("02" if rng.getrandbits(1) else "03") + hex32(rng)


def channel_id_from_funding(funding_txid: str, outnum: int) -> str:
    """Return the BOLT 2 channel id: funding txid (as wire bytes) XOR the output index.

    CLN prints txids byte-reversed relative to the wire; the channel id uses wire order, so
    reverse, XOR the last two bytes with the outnum, and print as is.
    """
    wire = bytearray(bytes.fromhex(funding_txid)[::-1])
    wire[30] ^= (outnum >> 8) & 0xFF
    wire[31] ^= outnum & 0xFF
    return wire.hex()


def scid(block: int, tx: int, out: int) -> str:
    """Return `BLOCKxTXxOUT`."""
    return f"{block}x{tx}x{out}"


def scriptpubkey_p2wpkh(rng: random.Random) -> str:
    """Return a P2WPKH scriptpubkey hex (0014 + 20 bytes)."""
    return "0014" + "%040x" % rng.getrandbits(160)


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def address(rng: random.Random, network: str) -> str:
    """Return a bech32-looking address string for `network` (not checksum-valid)."""
    hrp = {"bitcoin": "bc", "regtest": "bcrt"}.get(network, "tb")
    return hrp + "1q" + "".join(_BECH32[rng.getrandbits(5)] for _ in range(38))


def currency(network: str) -> str:
    """Return bookkeeper's currency name (BIP173 hrp) for `network`."""
    return {"bitcoin": "bc", "regtest": "bcrt"}.get(network, "tb")
