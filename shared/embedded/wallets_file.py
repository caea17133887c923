"""The wallets file: one address per line. Lines are trimmed and lowercased; a line that is not an
address is reported and dead-lettered with its line number, never silently skipped. Blank lines and
'#' comments are not wallets and are only counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from shared.core.errors import InvalidWallet
from shared.core.messages import DeadLetter
from shared.core.wallets import normalize_wallet
from shared.ports.deadletters import DeadLetterSink
from shared.ports.publisher import Topic
from shared.ports.warehouse import Warehouse


@dataclass
class WalletsImport:
    valid: int = 0
    added: int = 0
    blank_or_comment: int = 0
    duplicates: int = 0  # repeated in the file or already in the warehouse
    invalid: list[DeadLetter] = field(default_factory=list)


def import_wallets(path: Path, warehouse: Warehouse, dead_letters: DeadLetterSink) -> WalletsImport:
    report = WalletsImport()
    batch: list[str] = []
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                report.blank_or_comment += 1
                continue
            try:
                wallet = normalize_wallet(text)
            except InvalidWallet as exc:
                data = json.dumps({"file": str(path), "line": number, "text": text[:200]})
                letter = DeadLetter.of(Topic.WALLETS, data, InvalidWallet(f"line {number}: {exc.message}"), wallet=text)
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
