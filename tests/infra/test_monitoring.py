"""infra/terraform/monitoring.tf: each alert watches the resource resources.yaml names, at its variable's
threshold; the dashboard charts them; the log-based metrics match the lines the fetcher really logs.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import checks, hcl

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "infra" / "terraform"
CHANNEL = "projects/test-project/notificationChannels/1234567890"


@pytest.fixture
def resources() -> dict[str, Any]:
    return yaml.safe_load((REPO / "infra" / "resources.yaml").read_text())


@pytest.fixture
def plan() -> hcl.Module:
    return checks.plan(TF)


def policies(plan: hcl.Module, name: str) -> dict[Any, hcl.ResourceInstance]:
    return {p.key: p for p in plan.resources("google_monitoring_alert_policy") if p.name == name}


def test_every_alert_watches_what_resources_yaml_names(plan, resources):
    assert checks.monitoring_problems(plan, resources) == []
    assert checks.dashboard_problems(plan, resources) == []


def test_one_dead_letter_alert_per_dead_letter_topic_on_any_message(plan, resources):
    alerts = policies(plan, "dead_letters")
    assert set(alerts) == {"wallets-push", "files-push"}
    for sub, alert in alerts.items():
        (condition,) = checks._conditions(alert)
        topic = resources["subscriptions"][sub]["dead_letter"]["topic"]
        assert f'resource.labels.topic_id="{topic}"' in condition.get("filter")
        assert checks.DEAD_LETTER_METRIC in condition.get("filter")
        assert (condition.get("threshold_value"), condition.get("duration")) == (0, "0s")


def test_backlog_alerts_use_each_services_threshold(resources):
    plan = checks.plan(TF, backlog_age_alert_seconds={"fetcher": 900, "loader": 7200})
    assert checks.monitoring_problems(plan, resources) == []
    thresholds = {k: checks._conditions(p)[0].get("threshold_value") for k, p in policies(plan, "backlog_age").items()}
    assert thresholds == {"wallets-push": 900, "files-push": 7200}


def test_the_5xx_alert_is_the_fetchers_share_of_5xx(plan):
    (alert,) = policies(plan, "fetcher_5xx").values()
    (condition,) = checks._conditions(alert)
    assert (
        condition.get("filter") == condition.get("denominator_filter") + ' AND metric.labels.response_code_class="5xx"'
    )
    assert 'resource.labels.service_name="<module.fetcher.name>"' in condition.get("denominator_filter")
    assert condition.get("threshold_value") == 0.2
    (stricter,) = policies(checks.plan(TF, fetcher_5xx_ratio_threshold=0.5), "fetcher_5xx").values()
    assert checks._conditions(stricter)[0].get("threshold_value") == 0.5


def test_alerts_notify_the_channels_given_and_warn_when_there_are_none(resources):
    plan = checks.plan(TF, notification_channels=[CHANNEL])
    assert checks.monitoring_problems(plan, resources) == []
    assert {tuple(p.get("notification_channels")) for p in plan.resources("google_monitoring_alert_policy")} == {
        (CHANNEL,)
    }
    assert checks.check_warnings(plan) == []
    (warning,) = checks.check_warnings(checks.plan(TF))
    assert "notification_channels is empty" in warning


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"notification_channels": ["1234567890"]}, "notification_channels"),
        ({"backlog_age_alert_seconds": {"fetcher": 60, "loader": 1800}}, "backlog_age_alert_seconds"),
        ({"backlog_age_alert_seconds": {"fetcher": 3600.5, "loader": 1800}}, "backlog_age_alert_seconds"),
        ({"fetcher_5xx_ratio_threshold": 0}, "fetcher_5xx_ratio_threshold"),
        ({"fetcher_5xx_ratio_threshold": 1.5}, "fetcher_5xx_ratio_threshold"),
    ],
)
def test_monitoring_variables_are_validated(variables, variable):
    failures = checks.validation_failures(checks.plan(TF, **variables))
    assert any(f.startswith(f"var.{variable}:") for f in failures), failures


def test_a_push_service_without_a_backlog_threshold_fails_the_plan():
    failures = checks.precondition_failures(checks.plan(TF, backlog_age_alert_seconds={"fetcher": 3600}))
    assert any("backlog_age_alert_seconds needs a threshold" in f for f in failures), failures


def test_monitoring_follows_resources_yaml_when_it_changes(tmp_path, resources):
    """Rename every topic and subscription in a copy: the alerts and the dashboard follow."""
    shutil.copytree(TF, tmp_path / "infra" / "terraform", ignore=shutil.ignore_patterns(".terraform*"))
    renamed = {name: f"{name}-v2" for name in [*resources["topics"], *resources["subscriptions"]]}
    changed = {
        **resources,
        "topics": {renamed[t]: spec for t, spec in resources["topics"].items()},
        "subscriptions": {
            renamed[name]: {
                **spec,
                "topic": renamed[spec["topic"]],
                **(
                    {"dead_letter": {**spec["dead_letter"], "topic": renamed[spec["dead_letter"]["topic"]]}}
                    if "dead_letter" in spec
                    else {}
                ),
            }
            for name, spec in resources["subscriptions"].items()
        },
    }
    (tmp_path / "infra" / "resources.yaml").write_text(yaml.safe_dump(changed))
    copy = checks.plan(tmp_path / "infra" / "terraform")
    assert checks.monitoring_problems(copy, changed) == []
    assert checks.dashboard_problems(copy, changed) == []
    assert checks.precondition_failures(copy) == []


def test_the_checkers_catch_a_hard_coded_subscription(tmp_path, resources):
    copy = tmp_path / "infra" / "terraform"
    shutil.copytree(TF, copy, ignore=shutil.ignore_patterns(".terraform*"))
    (tmp_path / "infra" / "resources.yaml").write_text(yaml.safe_dump(resources))
    monitoring = copy / "monitoring.tf"
    by_name = 'resource.labels.subscription_id=\\"${each.key}\\"'
    assert monitoring.read_text().count(by_name) == 1
    monitoring.write_text(monitoring.read_text().replace(by_name, 'resource.labels.subscription_id=\\"wallets-push\\"'))
    problems = checks.monitoring_problems(checks.plan(copy), resources)
    assert any("backlog-age alerts watch ['wallets-push', 'wallets-push']" in p for p in problems), problems


# --- The log-based metrics match what the fetcher logs --------------------------------------------------


def _logging_regex(filter_text: str) -> str:
    return re.search(r'jsonPayload\.message=~"([^"]+)"', filter_text).group(1)


def test_the_part_metric_reads_the_fetchers_log_line(plan):
    metrics = {m.name: m for m in plan.resources("google_logging_metric")}
    source = (REPO / "shared" / "handlers" / "fetch.py").read_text()
    assert '"fetched part %d: %d rows in %d pages%s"' in source  # the line the metrics read
    line = "fetched part 3: 1234 rows in 10 pages (final)"  # that format, filled in
    for name in ("fetched_parts", "part_rows"):
        pattern = _logging_regex(metrics[name].get("filter"))
        assert re.search(pattern, line), (name, pattern)
        assert 'resource.labels.service_name="<module.fetcher.name>"' in metrics[name].get("filter")
    extractor = metrics["part_rows"].get("value_extractor")
    extracted = re.fullmatch(r'REGEXP_EXTRACT\(jsonPayload\.message, "(.+)"\)', extractor).group(1)
    assert re.search(extracted, line).group(1) == "1234"
    assert metrics["part_rows"].blocks("metric_descriptor")[0].get("value_type") == "DISTRIBUTION"


def test_the_429_metric_reads_the_clients_429_message(plan):
    (metric,) = [m for m in plan.resources("google_logging_metric") if m.name == "rate_limited"]
    source = (REPO / "shared" / "adapters" / "sources" / "http.py").read_text()
    text = re.search(r'jsonPayload\.message:"([^"]+)"', metric.get("filter")).group(1)
    assert f'RateLimited(f"{text}, retry after' in source
