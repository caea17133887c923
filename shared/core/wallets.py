"""Wallet addresses: the one place that says what a valid one is."""

from __future__ import annotations

import re

from shared.core.errors import InvalidWallet

_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")


def normalize_wallet(raw: str) -> str:
    """Trim and lowercase an address; raise InvalidWallet with the reason if it is not one."""
    wallet = raw.strip().lower()
    if not _ADDRESS.fullmatch(wallet):
        shown = raw.strip()[:80]
        raise InvalidWallet(f"not a wallet address (want 0x + 40 hex digits): {shown!r}")
    return wallet


def is_wallet(raw: str) -> bool:
    return bool(_ADDRESS.fullmatch(raw.strip().lower()))
