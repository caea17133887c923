"""infra/resources.yaml, typed: the one definition of topics, subscriptions and the bucket, which the
local bootstrap applies, Terraform reads, and the Pub/Sub adapters name their topics from (tests check
that the names agree). The code names a topic by its role (`Topic`); the role of a topic is the
service its push subscription delivers to (the fetcher's tasks, the loader's files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.ports.publisher import Topic

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

    def _pushed_to(self, service: str) -> SubscriptionSpec:
        return next(s for s in self.subscriptions if s.push_service == service)

    def topic_names(self) -> dict[Topic, str]:
        """Each role's topic: the one pushed to the fetcher carries wallets, to the loader files."""
        out: dict[Topic, str] = {}
        for role, service in ((Topic.WALLETS, "fetcher"), (Topic.FILES, "loader")):
            push = self._pushed_to(service)
            out[role] = push.topic
            out[role.dead_letter] = push.dead_letter_topic or f"{push.topic}-dead-letter"
        return out

    def dead_letter_subscriptions(self) -> dict[Topic, str]:
        """The topic a letter came from -> the pull subscription of its dead-letter topic."""
        names = self.topic_names()
        return {
            role: next(s.name for s in self.subscriptions if s.topic == names[role.dead_letter] and not s.push_service)
            for role in (Topic.WALLETS, Topic.FILES)
        }


def load_resources(path: Path = RESOURCES_FILE) -> Resources:
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
