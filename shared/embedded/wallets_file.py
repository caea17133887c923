"""The wallets file: one address per line. Lines are trimmed and lowercased; a line that is not an
address is reported and dead-lettered with its line number, never silently skipped. Blank lines and
'#' comments are not wallets and are only counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from shared.deadletters import DeadLetterQueue
from shared.errors import InvalidWallet
from shared.messages import DeadLetter
from shared.publisher import WALLETS
from shared.wallets import normalize_wallet
from shared.warehouse import Warehouse


@dataclass
class WalletsImport:
    valid: int = 0
    added: int = 0
    blank_or_comment: int = 0
    duplicates: int = 0  # repeated in the file or already in the warehouse
    invalid: list[DeadLetter] = field(default_factory=list)


def import_wallets(path: Path, warehouse: Warehouse, dead_letters: DeadLetterQueue) -> WalletsImport:
    report = WalletsImport()
    batch: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                report.blank_or_comment += 1
                continue
            try:
                wallet = normalize_wallet(text)
            except InvalidWallet as exc:
                letter = DeadLetter(
                    topic=WALLETS,
                    data=json.dumps({"file": str(path), "line": number, "text": text[:200]}),
                    error_class=exc.error_class,
                    error=f"line {number}: {exc.message}",
                    wallet=text[:200],
                )
                dead_letters.put(letter)
                report.invalid.append(letter)
                continue
            report.valid += 1
            batch.append(wallet)
            if len(batch) >= 10_000:
                report.added += warehouse.add_traders(batch)
                batch = []
    report.added += warehouse.add_traders(batch)
    report.duplicates = report.valid - report.added  # repeated lines, or wallets already known
    return report
