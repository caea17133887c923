"""infra/resources.yaml, typed: the one definition of topics, subscriptions, bucket and tables that the
local bootstrap applies and Terraform reads (tests check that the names agree)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESOURCES_FILE = Path(__file__).resolve().parents[1] / "infra" / "resources.yaml"


def _seconds(text: str | int) -> float:
    return float(str(text).removesuffix("s"))


@dataclass(frozen=True)
class SubscriptionSpec:
    name: str
    topic: str
    ack_deadline_seconds: int
    push_service: str | None = None
    push_path: str = "/"
    minimum_backoff: float | None = None
    maximum_backoff: float | None = None
    dead_letter_topic: str | None = None
    max_delivery_attempts: int | None = None
    message_retention_seconds: float | None = None


@dataclass(frozen=True)
class Resources:
    topics: tuple[str, ...]
    subscriptions: tuple[SubscriptionSpec, ...]
    bucket_suffix: str
    dataset: str
    staging_dataset: str
    raw: dict[str, Any]

    def subscription(self, name: str) -> SubscriptionSpec:
        return next(s for s in self.subscriptions if s.name == name)


def load_resources(path: Path = RESOURCES_FILE) -> Resources:
    import yaml

    raw = yaml.safe_load(path.read_text())
    subs = []
    for name, spec in raw["subscriptions"].items():
        retry = spec.get("retry_policy") or {}
        dead = spec.get("dead_letter") or {}
        subs.append(
            SubscriptionSpec(
                name=name,
                topic=spec["topic"],
                ack_deadline_seconds=int(spec["ack_deadline_seconds"]),
                push_service=spec.get("push_service"),
                push_path=spec.get("push_path", "/"),
                minimum_backoff=_seconds(retry["minimum_backoff"]) if retry else None,
                maximum_backoff=_seconds(retry["maximum_backoff"]) if retry else None,
                dead_letter_topic=dead.get("topic"),
                max_delivery_attempts=dead.get("max_delivery_attempts"),
                message_retention_seconds=_seconds(spec["message_retention"]) if "message_retention" in spec else None,
            )
        )
    return Resources(
        tuple(raw["topics"]),
        tuple(subs),
        raw["bucket"]["name_suffix"],
        raw["bigquery"]["dataset"],
        raw["bigquery"]["staging_dataset"],
        raw,
    )
