"""The safety properties of infra/terraform, as functions that list what is wrong (empty = fine).

Each takes parsed configurations (`hcl.Config`) or an evaluated root module (`hcl.Module`), so the
tests run them on the real configuration and on small bad snippets that prove they can fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shared.core.tables import TABLES
from tests.infra import hcl
from tests.infra.hcl import Config, Module, Partial, ResourceInstance, Unknown

PUBSUB_AGENT = re.compile(r"^serviceAccount:service-\d+@gcp-sa-pubsub\.iam\.gserviceaccount\.com$")
BUDGET_ENV = ("FETCH_BUDGET_SECONDS", "LOADER_FLUSH_SECONDS")  # the work a push must finish in
TEST_PROJECT = "test-project"
TEST_PROJECT_NUMBER = "123456789012"
TEST_IMAGE_TAG = "0123abc"  # image_tag is required (no default): a plan names the build it deploys
STUBS = {"data": {"google_project": {"this": {"number": TEST_PROJECT_NUMBER}}}}


def plan(directory: Path | str, **variables: Any) -> Module:
    """The root module as `terraform plan -var project=test-project -var image_tag=0123abc ...` would see it."""
    return hcl.root(directory, {"project": TEST_PROJECT, "image_tag": TEST_IMAGE_TAG, **variables}, stubs=STUBS)


def configs(directory: Path | str) -> list[Config]:
    """A root configuration and every local module it calls."""
    seen: dict[Path, Config] = {}
    pending = [hcl.load_config(directory)]
    while pending:
        config = pending.pop()
        if config.directory in seen:
            continue
        seen[config.directory] = config
        pending.extend(config.module_config(name) for name in config.modules)
    return list(seen.values())


# --- Static properties -------------------------------------------------------------------------------


def authoritative_iam(configs: Iterable[Config]) -> list[str]:
    """IAM must be additive: *_iam_binding and *_iam_policy replace everyone else's grants."""
    return [
        f"{c.directory.name}: {rtype}.{rname} is authoritative; use the matching _iam_member"
        for c in configs
        for (rtype, rname) in c.resources
        if rtype.endswith(("_iam_binding", "_iam_policy"))
    ]


def count_usage(configs: Iterable[Config]) -> list[str]:
    """`count` reshuffles instances when one is removed; resources are keyed by name with for_each."""
    problems = []
    for c in configs:
        blocks = [(f"{t}.{n}", b) for (t, n), b in {**c.resources, **c.data}.items()]
        blocks += [(f"module.{n}", b) for n, b in c.modules.items()]
        problems += [f"{c.directory.name}: {address} uses count" for address, body in blocks if "count" in body]
    return problems


def untyped_variables(configs: Iterable[Config]) -> list[str]:
    problems = []
    for c in configs:
        for name, body in c.variables.items():
            if "type" not in body:
                problems.append(f"{c.directory.name}: variable {name} has no type")
            description = hcl.evaluate_raw(body.get("description", '""'), {})
            if not isinstance(description, str) or not description.strip():
                problems.append(f"{c.directory.name}: variable {name} has no description")
    return problems


# --- Evaluated properties ------------------------------------------------------------------------


def _first(blocks: list[hcl.BlockInstance]) -> hcl.BlockInstance | None:
    return blocks[0] if blocks else None


def _refers(value: Any, resource: ResourceInstance) -> bool:
    """Whether an attribute value points at `resource` (by reference, or by its evaluated name/id)."""
    if isinstance(value, Unknown):
        return value.path.startswith(f"{resource.type}.{resource.name}.")
    name = resource.get("name")
    return isinstance(value, str) and isinstance(name, str) and (value == name or value.endswith(f"/{name}"))


def push_subscriptions(root: Module) -> list[ResourceInstance]:
    return [s for s in root.all_resources("google_pubsub_subscription") if s.blocks("push_config")]


def push_subscription_problems(root: Module) -> list[str]:
    """Every push subscription: OIDC token from a service account, a retry policy, a dead-letter policy."""
    problems = []
    for sub in push_subscriptions(root):
        push = sub.blocks("push_config")[0]
        oidc = _first(push.blocks("oidc_token"))
        if oidc is None or oidc.get("service_account_email") in (None, ""):
            problems.append(f"{sub.address}: push without an OIDC token")
        retry = _first(sub.blocks("retry_policy"))
        if retry is None or None in (retry.get("minimum_backoff"), retry.get("maximum_backoff")):
            problems.append(f"{sub.address}: no retry policy (nacks would be redelivered at once)")
        dead = _first(sub.blocks("dead_letter_policy"))
        if dead is None or dead.get("dead_letter_topic") is None:
            problems.append(f"{sub.address}: no dead-letter policy")
        elif not isinstance(attempts := dead.get("max_delivery_attempts"), Unknown) and not (
            isinstance(attempts, int) and 5 <= attempts <= 100
        ):
            problems.append(f"{sub.address}: max_delivery_attempts {attempts!r} outside 5-100")
    return problems


def dead_letter_problems(root: Module) -> list[str]:
    """A dead-letter topic needs a subscription (or letters are lost) and the Pub/Sub service agent needs
    publisher on it and subscriber on the source subscription (or nothing is ever dead-lettered)."""
    problems = []
    for module in root.all_modules():
        topics = module.resources("google_pubsub_topic")
        subs = module.resources("google_pubsub_subscription")
        topic_grants = module.resources("google_pubsub_topic_iam_member")
        sub_grants = module.resources("google_pubsub_subscription_iam_member")
        for sub in subs:
            dead = _first(sub.blocks("dead_letter_policy"))
            if dead is None:
                continue
            target = dead.get("dead_letter_topic")
            matches = [t for t in topics if _refers(target, t)]
            if not matches:
                problems.append(f"{sub.address}: dead-letter topic {target!r} is not created beside it")
                continue
            topic = matches[0]
            if not any(_refers(s.get("topic"), topic) for s in subs if s is not sub):
                problems.append(f"{topic.address}: dead-letter topic without a subscription (letters are lost)")
            if not any(
                _refers(g.get("topic"), topic) and g.get("role") == "roles/pubsub.publisher" and _agent(g.get("member"))
                for g in topic_grants
            ):
                problems.append(f"{topic.address}: Pub/Sub service agent lacks roles/pubsub.publisher on it")
            if not any(
                _refers(g.get("subscription"), sub)
                and g.get("role") == "roles/pubsub.subscriber"
                and _agent(g.get("member"))
                for g in sub_grants
            ):
                problems.append(f"{sub.address}: Pub/Sub service agent lacks roles/pubsub.subscriber on it")
    return problems


def _agent(member: Any) -> bool:
    return isinstance(member, str) and not isinstance(member, Partial) and bool(PUBSUB_AGENT.match(member))


def cloud_run_services(root: Module) -> dict[str, ResourceInstance]:
    return {s.get("name"): s for s in root.all_resources("google_cloud_run_v2_service")}


def _service_module(root: Module, endpoint: Any) -> str | None:
    """Which root module call a push endpoint points at: "<module.fetcher.uri>/" -> fetcher."""
    m = re.match(r"^<module\.([\w-]+)\.uri>", endpoint) if isinstance(endpoint, str) else None
    return m.group(1) if m and m.group(1) in root.config.modules else None


def push_target(root: Module, sub: ResourceInstance) -> ResourceInstance | None:
    """The Cloud Run service a push subscription delivers to."""
    name = _service_module(root, sub.blocks("push_config")[0].get("push_endpoint"))
    if name is None:
        return None
    services = [s for child in root.modules(name).values() for s in child.resources("google_cloud_run_v2_service")]
    return services[0] if len(services) == 1 else None


def _container(service: ResourceInstance) -> hcl.BlockInstance:
    return service.blocks("template")[0].blocks("containers")[0]


def service_env(service: ResourceInstance) -> dict[str, Any]:
    """Plain env values, and Unknown("secret:<ref>") for values read from Secret Manager."""
    env = {}
    for e in _container(service).blocks("env"):
        if e.body.get("value_source"):
            ref = e.blocks("value_source")[0].blocks("secret_key_ref")[0]
            env[e.get("name")] = Unknown(f"secret:{ref.get('secret')}@{ref.get('version')}")
        else:
            env[e.get("name")] = e.get("value")
    return env


def max_instances(service: ResourceInstance) -> Any:
    scaling = _first(service.blocks("template")[0].blocks("scaling"))
    return None if scaling is None else scaling.get("max_instance_count")


def timeout_seconds(service: ResourceInstance) -> float | None:
    timeout = service.blocks("template")[0].get("timeout")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", timeout) if isinstance(timeout, str) else None
    return float(m.group(1)) if m else None


def ack_deadline_problems(root: Module, margin: float = 30) -> list[str]:
    """10-600 s everywhere; a push's ack deadline covers its receiver's work budget plus a margin."""
    problems = []
    for sub in root.all_resources("google_pubsub_subscription"):
        ack = sub.get("ack_deadline_seconds")
        if not isinstance(ack, int | float) or not 10 <= ack <= 600:
            problems.append(f"{sub.address}: ack deadline {ack!r} outside 10-600 s")
            continue
        if not sub.blocks("push_config"):
            continue
        service = push_target(root, sub)
        if service is None:
            problems.append(f"{sub.address}: cannot tell which Cloud Run service it pushes to")
            continue
        env = service_env(service)
        budgets = {k: env[k] for k in BUDGET_ENV if k in env}
        if not budgets:
            problems.append(f"{sub.address}: {service.get('name')} declares no work budget ({', '.join(BUDGET_ENV)})")
        for key, budget in budgets.items():
            if float(budget) + margin > ack:
                problems.append(f"{sub.address}: ack deadline {ack} s < {key} {budget} s + {margin} s margin")
    return problems


def timeout_problems(root: Module) -> list[str]:
    """Pub/Sub waits up to the ack deadline: Cloud Run must not cut the request before it."""
    problems = []
    for sub in push_subscriptions(root):
        service = push_target(root, sub)
        if service is None:
            problems.append(f"{sub.address}: cannot tell which Cloud Run service it pushes to")
            continue
        timeout, ack = timeout_seconds(service), sub.get("ack_deadline_seconds")
        if timeout is None or timeout < ack:
            problems.append(
                f"{service.address}: timeout {timeout!r} s shorter than {sub.get('name')}'s ack deadline {ack} s"
            )
    return problems


def single_writer_problems(root: Module, writers: Iterable[str] = ("loader",)) -> list[str]:
    """One loader instance: BigQuery cancels a transaction that races another on the same table."""
    services = cloud_run_services(root)
    problems = []
    for name in writers:
        if name not in services:
            problems.append(f"no Cloud Run service named {name}")
            continue
        most = max_instances(services[name])
        if most != 1:
            problems.append(f"{name} can scale to {most!r} instances; one writer per table needs exactly 1")
    return problems


def fleet_rate_problems(directory: Path | str, fetcher: str = "fetcher", **variables: Any) -> list[str]:
    """For every tier preset in dome_tier_limits, what makes the fleet's adaptive shares safe
    (shared/adapters/sources/share.py): each instance's ceiling, the key's windows it is given, is at
    most the tier (one instance never exceeds the key by itself); FETCHER_MAX_INSTANCES is the
    service's max instances (so the floors, the key / that, add up to at most the key); and every
    instance's floor is at least one request per window (else the fleet cannot make progress)."""
    problems = []
    tiers = plan(directory, **variables).var["dome_tier_limits"]
    for tier, limits in tiers.items():
        root = plan(directory, **variables, dome_tier=tier)
        service = cloud_run_services(root).get(fetcher)
        if service is None:
            return [f"no Cloud Run service named {fetcher}"]
        env, most = service_env(service), max_instances(service)
        instances = env.get("FETCHER_MAX_INSTANCES")
        if instances != most:
            problems.append(
                f"{tier}: FETCHER_MAX_INSTANCES={instances!r} is not the {most!r} instances Cloud Run may run"
            )
            continue
        for key, window in (("DOME_RATE_PER_SECOND", "per_second"), ("DOME_RATE_PER_10S", "per_10s")):
            if key not in env:
                problems.append(f"{tier}: {fetcher} has no {key}")
                continue
            ceiling = float(env[key])
            if ceiling > limits[window]:
                problems.append(f"{tier}: one instance's {key}={env[key]} exceeds the tier's {limits[window]} {window}")
            if ceiling // float(instances) < 1:
                problems.append(f"{tier}: {key}={env[key]} / {instances} instances gives each instance no requests")
    return problems


def resource_names(root: Module) -> dict[str, set[str]]:
    """What the configuration would create, by kind, with variables and resources.yaml evaluated."""

    def names(rtype: str, attr: str) -> set[str]:
        return {r.get(attr) for r in root.all_resources(rtype)}

    return {
        "topics": names("google_pubsub_topic", "name"),
        "subscriptions": names("google_pubsub_subscription", "name"),
        "buckets": names("google_storage_bucket", "name"),
        "datasets": names("google_bigquery_dataset", "dataset_id"),
        "tables": names("google_bigquery_table", "table_id"),
        "services": set(cloud_run_services(root)),
    }


def name_problems(root: Module, resources: Mapping[str, Any], project: str = TEST_PROJECT) -> list[str]:
    """Everything resources.yaml and the table spec declare exists under exactly its name, wired as they say."""
    created = resource_names(root)
    bq = resources["bigquery"]
    expected = {
        "topics": set(resources["topics"]),
        "subscriptions": set(resources["subscriptions"]),
        "buckets": {f"{project}-{resources['bucket']['name_suffix']}"},
        "datasets": {bq["dataset"], bq["staging_dataset"]},
        "tables": {t.name for t in TABLES},
    }
    problems = [
        f"{kind}: terraform creates {sorted(created[kind])}, resources.yaml says {sorted(names)}"
        for kind, names in expected.items()
        if created[kind] != names
    ]
    subs = {s.get("name"): s for s in root.all_resources("google_pubsub_subscription")}
    for name, spec in resources["subscriptions"].items():
        sub = subs.get(name)
        if sub is None:
            continue
        topic = _topic_name(sub, sub.get("topic"))
        if topic != spec["topic"]:
            problems.append(f"{name}: reads topic {topic!r}, resources.yaml says {spec['topic']!r}")
        if sub.get("ack_deadline_seconds") != spec["ack_deadline_seconds"]:
            problems.append(
                f"{name}: ack deadline {sub.get('ack_deadline_seconds')!r}, resources.yaml says "
                f"{spec['ack_deadline_seconds']}"
            )
        if "message_retention" in spec and sub.get("message_retention_duration") != spec["message_retention"]:
            problems.append(
                f"{name}: retention {sub.get('message_retention_duration')!r}, resources.yaml says "
                f"{spec['message_retention']}"
            )
        if "push_service" in spec:
            problems += _push_wiring_problems(root, sub, spec)
    return problems


def _topic_name(resource: ResourceInstance, value: Any) -> Any:
    """A topic reference (google_pubsub_topic.X.id, or a name) resolved to the topic's name."""
    for topic in resource.module.resources("google_pubsub_topic"):
        if _refers(value, topic):
            return topic.get("name")
    return value


def _push_wiring_problems(root: Module, sub: ResourceInstance, spec: Mapping[str, Any]) -> list[str]:
    name, problems = sub.get("name"), []
    retry = _first(sub.blocks("retry_policy"))
    backoff = (
        None
        if retry is None
        else {"minimum_backoff": retry.get("minimum_backoff"), "maximum_backoff": retry.get("maximum_backoff")}
    )
    if backoff != spec["retry_policy"]:
        problems.append(f"{name}: retry policy {backoff!r}, resources.yaml says {spec['retry_policy']!r}")
    dead = _first(sub.blocks("dead_letter_policy"))
    if dead is not None:
        got = {
            "topic": _topic_name(sub, dead.get("dead_letter_topic")),
            "max_delivery_attempts": dead.get("max_delivery_attempts"),
        }
        if got != spec["dead_letter"]:
            problems.append(f"{name}: dead letter {got!r}, resources.yaml says {spec['dead_letter']!r}")
    service = push_target(root, sub)
    endpoint = sub.blocks("push_config")[0].get("push_endpoint")
    if service is None or service.get("name") != spec["push_service"]:
        problems.append(f"{name}: pushes to {endpoint!r}, resources.yaml says service {spec['push_service']!r}")
    elif not str(endpoint).endswith(f".uri>{spec['push_path']}"):
        problems.append(f"{name}: push path of {endpoint!r} is not {spec['push_path']!r}")
    return problems


def bucket_problems(root: Module, resources: Mapping[str, Any]) -> list[str]:
    problems = []
    for bucket in root.all_resources("google_storage_bucket"):
        name = bucket.get("name")
        if bucket.get("uniform_bucket_level_access") is not True:
            problems.append(f"{name}: uniform bucket-level access is off")
        if bucket.get("public_access_prevention") != "enforced":
            problems.append(f"{name}: public access prevention is not enforced")
        rules = [(r.blocks("condition")[0], r.blocks("action")[0]) for r in bucket.blocks("lifecycle_rule")]
        wanted = {"age": resources["bucket"]["delete_after_days"], "prefix": [resources["bucket"]["part_prefix"]]}
        if not any(
            a.get("type") == "Delete" and c.get("age") == wanted["age"] and c.get("matches_prefix") == wanted["prefix"]
            for c, a in rules
        ):
            problems.append(f"{name}: no lifecycle rule deleting {wanted['prefix']} after {wanted['age']} days")
    return problems


def partition_problems(root: Module, table: str = "trades") -> list[str]:
    """trades: MONTH partitions on timestamp (a batch touches few of the 4,000 a job may modify),
    clustered by wallet_address, condition_id (the MERGE key and the usual filter)."""
    tables = {t.get("table_id"): t for t in root.all_resources("google_bigquery_table")}
    if table not in tables:
        return [f"no table {table}"]
    trades = tables[table]
    partitions = [(p.get("type"), p.get("field")) for p in trades.blocks("time_partitioning")]
    problems = []
    if partitions != [("MONTH", "timestamp")]:
        problems.append(f"{table}: partitioning {partitions!r}, want MONTH on timestamp")
    if trades.get("clustering") != ["wallet_address", "condition_id"]:
        problems.append(f"{table}: clustering {trades.get('clustering')!r}, want wallet_address, condition_id")
    return problems


def validation_failures(root: Module) -> list[str]:
    """Variable validations of the root and of every module instance that evaluate to false."""
    problems = []
    for module in root.all_modules():
        for name, body in module.config.variables.items():
            for rule in body.get("validation", []):
                ok = module.eval(rule["condition"])
                if ok is False:
                    problems.append(f"{module.address}var.{name}: {module.eval(rule['error_message'])}")
    return problems


def precondition_failures(root: Module) -> list[str]:
    """lifecycle preconditions (the plan-time invariants) that evaluate to false."""
    problems = []
    for resource in root.all_resources():
        for lifecycle in resource.blocks("lifecycle"):
            for rule in lifecycle.blocks("precondition"):
                if rule.get("condition") is False:
                    problems.append(f"{resource.address}: {rule.get('error_message')}")
    return problems


def check_warnings(root: Module) -> list[str]:
    """`check` block assertions that evaluate to false: Terraform prints them as warnings (never fails)."""
    return [
        f"{module.address}check.{name}: {message}"
        for module in root.all_modules()
        for name, condition, message in module.check_assertions()
        if condition is False
    ]


# --- Monitoring (monitoring.tf) --------------------------------------------------------------------------

DEAD_LETTER_METRIC = "pubsub.googleapis.com/topic/send_message_operation_count"
BACKLOG_AGE_METRIC = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"
REQUEST_COUNT_METRIC = "run.googleapis.com/request_count"


def _conditions(policy: ResourceInstance) -> list[hcl.BlockInstance]:
    return [c.blocks("condition_threshold")[0] for c in policy.blocks("conditions") if c.blocks("condition_threshold")]


def _names(filter_text: Any, label: str) -> set[str]:
    """The values a Monitoring filter gives `label`, e.g. resource.labels.topic_id="x" -> {"x"}."""
    return set(re.findall(rf'{re.escape(label)}="([^"]*)"', str(filter_text)))


def monitoring_problems(root: Module, resources: Mapping[str, Any]) -> list[str]:
    """Each alert watches exactly the resource resources.yaml names for it, with the variable's threshold:
    (a) one dead-letter alert per push subscription, on its dead-letter topic's publish count, any message;
    (b) one backlog-age alert per push subscription, at backlog_age_alert_seconds of its service;
    (c) one 5xx-share alert on the fetcher, at fetcher_5xx_ratio_threshold.
    Every alert notifies var.notification_channels."""
    problems: list[str] = []
    push = {name: spec for name, spec in resources["subscriptions"].items() if "push_service" in spec}
    policies = root.resources("google_monitoring_alert_policy")
    channels = root.var["notification_channels"]
    for policy in policies:
        if policy.get("notification_channels") != channels:
            got = policy.get("notification_channels")
            problems.append(f"{policy.address}: notifies {got!r}, not var.notification_channels")

    def watching(metric: str) -> list[tuple[ResourceInstance, hcl.BlockInstance]]:
        return [(p, c) for p in policies for c in _conditions(p) if f'metric.type="{metric}"' in str(c.get("filter"))]

    dead = watching(DEAD_LETTER_METRIC)
    watched_topics = [t for _, c in dead for t in _names(c.get("filter"), "resource.labels.topic_id")]
    wanted_topics = sorted(spec["dead_letter"]["topic"] for spec in push.values())
    if sorted(watched_topics) != wanted_topics:
        problems.append(f"dead-letter alerts watch {sorted(watched_topics)}, resources.yaml's are {wanted_topics}")
    for policy, condition in dead:
        if (condition.get("comparison"), condition.get("threshold_value")) != ("COMPARISON_GT", 0):
            problems.append(f"{policy.address}: a dead-letter alert must fire on any message (> 0)")

    thresholds = root.var["backlog_age_alert_seconds"]
    backlog = watching(BACKLOG_AGE_METRIC)
    watched_subs = [s for _, c in backlog for s in _names(c.get("filter"), "resource.labels.subscription_id")]
    if sorted(watched_subs) != sorted(push):
        problems.append(f"backlog-age alerts watch {sorted(watched_subs)}, resources.yaml's pushes are {sorted(push)}")
    for policy, condition in backlog:
        for sub in _names(condition.get("filter"), "resource.labels.subscription_id") & set(push):
            wanted = thresholds.get(push[sub]["push_service"])
            if condition.get("threshold_value") != wanted:
                got = condition.get("threshold_value")
                problems.append(f"{policy.address}: threshold {got!r} s, backlog_age_alert_seconds says {wanted!r}")

    errors = watching(REQUEST_COUNT_METRIC)
    if len(errors) != 1:
        problems.append(f"{len(errors)} alert conditions on {REQUEST_COUNT_METRIC}, want one (the fetcher's 5xx share)")
    for policy, condition in errors:
        numerator, denominator = str(condition.get("filter")), str(condition.get("denominator_filter"))
        if (watched := _names(numerator, "resource.labels.service_name")) != {"<module.fetcher.name>"}:
            problems.append(f"{policy.address}: watches {watched}, not the fetcher")
        if 'response_code_class="5xx"' not in numerator or "response_code_class" in denominator:
            problems.append(f"{policy.address}: not the share of 5xx among all the fetcher's responses")
        if _names(denominator, "resource.labels.service_name") != {"<module.fetcher.name>"}:
            problems.append(f"{policy.address}: denominator is not the fetcher's requests")
        if condition.get("threshold_value") != root.var["fetcher_5xx_ratio_threshold"]:
            problems.append(f"{policy.address}: threshold is not var.fetcher_5xx_ratio_threshold")
    return problems


def dashboard_problems(root: Module, resources: Mapping[str, Any]) -> list[str]:
    """The dashboard charts every push subscription's backlog and every dead-letter topic, and reads the
    log-based metrics this configuration creates (by name), nothing hard-coded."""
    problems: list[str] = []
    dashboard = root.local["dashboard"]
    queries = [d["timeSeriesQuery"] for w in dashboard["gridLayout"]["widgets"] for d in w["xyChart"]["dataSets"]]
    filters = [str(q.get("timeSeriesFilter", {}).get("filter", q.get("prometheusQuery", ""))) for q in queries]
    push = {name: spec for name, spec in resources["subscriptions"].items() if "push_service" in spec}
    backlog = [f for f in filters if "subscription/num_undelivered_messages" in f]
    charted_subs = {s for f in backlog for s in _names(f, "resource.labels.subscription_id")}
    if charted_subs != set(push):
        problems.append(f"backlog chart shows {sorted(charted_subs)}, resources.yaml's pushes are {sorted(push)}")
    charted_topics = {t for f in filters if DEAD_LETTER_METRIC in f for t in _names(f, "resource.labels.topic_id")}
    if charted_topics != {spec["dead_letter"]["topic"] for spec in push.values()}:
        problems.append(f"dead-letter chart shows {sorted(charted_topics)}")
    metrics = {m.get("name") for m in root.resources("google_logging_metric")}
    used = {n for f in filters for n in re.findall(r"logging\.googleapis\.com/user/([\w-]+)", f)}
    used |= {n for f in filters for n in re.findall(r"logging_googleapis_com:user_([\w-]+?)_(?:sum|count)\b", f)}
    if not used or not used <= metrics:
        problems.append(f"dashboard reads log metrics {sorted(used)}, the configuration creates {sorted(metrics)}")
    return problems
