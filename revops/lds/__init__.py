"""Liquidity Dividend System: investors' capital held in an LNbits vault, paid a share of net
routing profit pro rata to their time-weighted balance, behind a solvency check and a high-water
mark. See docs/lds.md. The LNbits side is the extension in contrib/lnbits-vault/."""
