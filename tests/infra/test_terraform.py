"""infra/terraform: the safety properties of the Cloud deployment, checked without any provider.

The configuration is parsed with python-hcl2 and evaluated by tests/infra/hcl.py (variables, locals,
module calls, for_each, dynamic blocks), reading infra/resources.yaml exactly as Terraform does. Each
checker in tests/infra/checks.py is also run on a small bad snippet, to show it catches the violation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml

from services.dispatcher import app as dispatcher_app
from services.fetcher import app as fetcher_app
from services.loader import app as loader_app
from shared.core.tables import TABLES, terraform_files, terraform_schema
from tests.infra import checks, hcl
from tests.infra.hcl import Unknown

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "infra" / "terraform"
MODULES = TF / "modules"
RESOURCES_YAML = REPO / "infra" / "resources.yaml"
TIERS = {"free": (10, 100), "dev": (100, 500), "pro": (300, 3000)}  # design rule 10: per 1 s, per 10 s
FETCH_BUDGET_MARGIN = 30


@pytest.fixture
def resources() -> dict[str, Any]:
    return yaml.safe_load(RESOURCES_YAML.read_text())


@pytest.fixture
def plan() -> hcl.Module:
    return checks.plan(TF)


def write(directory: Path, text: str, name: str = "main.tf") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(dedent(text).replace("MODULES", str(MODULES)))
    return directory


def services(plan: hcl.Module) -> dict[str, hcl.ResourceInstance]:
    return checks.cloud_run_services(plan)


# --- The configuration reads resources.yaml and creates exactly what it declares ----------------------


def test_terraform_reads_the_resource_definition_the_emulators_read(plan, resources):
    assert "yamldecode(file(" in plan.config.locals["resources"]
    assert plan.local["resources"] == resources


def test_every_resource_of_resources_yaml_is_created_under_its_name_and_wiring(plan, resources):
    assert checks.name_problems(plan, resources) == []
    assert checks.bucket_problems(plan, resources) == []


def test_names_follow_resources_yaml_when_it_changes(tmp_path, resources):
    """Rename everything renameable in a copy of resources.yaml: a name hard-coded in HCL would stay behind."""
    shutil.copytree(TF, tmp_path / "infra" / "terraform", ignore=shutil.ignore_patterns(".terraform*"))
    renamed = {name: f"{name}-v2" for name in [*resources["topics"], *resources["subscriptions"]]}
    changed = {
        "topics": {renamed[t]: spec for t, spec in resources["topics"].items()},
        "subscriptions": {
            renamed[name]: {
                **spec,
                "topic": renamed[spec["topic"]],
                **(
                    {
                        "dead_letter": {
                            **spec["dead_letter"],
                            "topic": renamed[spec["dead_letter"]["topic"]],
                            "max_delivery_attempts": 7,
                        }
                    }
                    if "dead_letter" in spec
                    else {}
                ),
                **(
                    {"retry_policy": {"minimum_backoff": "20s", "maximum_backoff": "300s"}}
                    if "retry_policy" in spec
                    else {}
                ),
            }
            for name, spec in resources["subscriptions"].items()
        },
        "bucket": {"name_suffix": "parts-v2", "part_prefix": "parts/", "delete_after_days": 3},
        "bigquery": {**resources["bigquery"], "dataset": "trades_v2", "staging_dataset": "trades_v2_staging"},
    }
    (tmp_path / "infra" / "resources.yaml").write_text(yaml.safe_dump(changed))

    copy = checks.plan(tmp_path / "infra" / "terraform")

    assert copy.local["resources"] == changed
    assert checks.name_problems(copy, changed) == []
    assert checks.bucket_problems(copy, changed) == []
    assert checks.precondition_failures(copy) == []


# --- Pub/Sub ---------------------------------------------------------------------------------------


def test_push_subscriptions_have_oidc_retry_and_dead_letter_policies(plan):
    assert len(checks.push_subscriptions(plan)) == 2
    assert checks.push_subscription_problems(plan) == []


def test_dead_letter_topics_have_a_subscription_and_the_service_agent_its_grants(plan):
    assert checks.dead_letter_problems(plan) == []


def test_ack_deadlines_are_in_range_and_cover_each_receivers_budget(plan, resources):
    assert checks.ack_deadline_problems(plan, margin=FETCH_BUDGET_MARGIN) == []
    fetcher_env = checks.service_env(services(plan)["fetcher"])
    assert float(fetcher_env["FETCH_BUDGET_SECONDS"]) == 240
    assert resources["subscriptions"]["wallets-push"]["ack_deadline_seconds"] >= 240 + FETCH_BUDGET_MARGIN


def test_cloud_run_timeouts_cover_their_subscriptions_ack_deadlines(plan):
    assert checks.timeout_problems(plan) == []
    assert checks.timeout_seconds(services(plan)["fetcher"]) == 300
    assert checks.timeout_seconds(services(plan)["loader"]) == 600


def test_push_uses_the_receivers_deterministic_url_as_oidc_audience(plan):
    for sub in checks.push_subscriptions(plan):
        service = checks.push_target(plan, sub)
        audience = sub.blocks("push_config")[0].blocks("oidc_token")[0].get("audience")
        expected = f"https://{service.get('name')}-{checks.TEST_PROJECT_NUMBER}.us-central1.run.app"
        assert audience == expected == checks.service_env(service)["OIDC_AUDIENCE"]


# --- Cloud Run: scaling, rate limits, environment, exposure -----------------------------------------


def test_loader_cannot_scale_above_one_instance(plan):
    assert checks.single_writer_problems(plan, ["loader"]) == []


def test_loader_concurrency_lets_a_batch_gather_its_files(plan):
    loader = services(plan)["loader"]
    concurrency = loader.blocks("template")[0].get("max_instance_request_concurrency")
    assert concurrency >= float(checks.service_env(loader)["LOADER_FLUSH_FILES"])


def test_tier_presets_are_the_published_dome_tiers(plan):
    limits = plan.var["dome_tier_limits"]
    assert {tier: (v["per_second"], v["per_10s"]) for tier, v in limits.items()} == TIERS


def test_fetcher_fleet_stays_under_every_tiers_limits(plan):
    assert checks.fleet_rate_problems(TF) == []
    # and the numbers the services receive for the default tier (dev): each of at most 10 instances has
    # the whole key (100/s, 500/10 s) as its ceiling and adapts its share above a tenth of it
    env = checks.service_env(services(plan)["fetcher"])
    assert (env["DOME_RATE_PER_SECOND"], env["DOME_RATE_PER_10S"], env["DOME_TIER"]) == (100, 500, "custom")
    assert env["FETCHER_MAX_INSTANCES"] == checks.max_instances(services(plan)["fetcher"]) == 10


@pytest.mark.parametrize("instances", [1, 3, 7])
def test_fetcher_fleet_stays_under_every_tier_at_other_sizes(instances):
    """Sizes that do not divide the limits."""
    assert checks.fleet_rate_problems(TF, fetcher_max_instances=instances) == []


@pytest.mark.parametrize("instances", [1, 3, 7, 10])
def test_fetcher_fleet_stays_under_the_polymarket_limit(instances):
    fetcher = services(checks.plan(TF, trade_source="polymarket", fetcher_max_instances=instances))["fetcher"]
    env = checks.service_env(fetcher)
    assert env["POLYMARKET_RATE_PER_10S"] == 200  # each instance's ceiling: the whole /trades limit
    assert env["FETCHER_MAX_INSTANCES"] == checks.max_instances(fetcher) == instances
    assert "DOME_API_KEY" not in env  # no secret needed for the public API


@pytest.mark.parametrize("source", ["dome", "polymarket"])
def test_the_dispatcher_names_the_source_the_fetchers_page(source):
    """A task names its source and a fetcher refuses another's: a dispatcher left on the default would
    have every wallet of a polymarket deployment dead-lettered."""
    env = {name: checks.service_env(s) for name, s in services(checks.plan(TF, trade_source=source)).items()}
    assert env["dispatcher"]["TRADE_SOURCE"] == env["fetcher"]["TRADE_SOURCE"] == source


def test_the_daily_sync_settings_reach_the_dispatcher():
    env = checks.service_env(services(checks.plan(TF, sync_hour_utc=5, sync_lookback_seconds=7200))["dispatcher"])
    assert (env["SYNC_DAILY"], env["SYNC_HOUR_UTC"], env["SYNC_LOOKBACK_SECONDS"]) == (True, 5, 7200)


def test_the_dispatcher_pages_nothing_and_holds_no_key_unless_verify_asks_the_api(plan):
    dispatcher = checks.service_env(services(plan)["dispatcher"])
    assert dispatcher["TRADE_SOURCE"] == "dome"
    assert not {k for k in dispatcher if k.startswith("DOME_")}
    assert checks.service_env(services(checks.plan(TF, trade_source="polymarket"))["dispatcher"])["TRADE_SOURCE"] == (
        "polymarket"
    )


@pytest.mark.parametrize(("tier", "instances"), [(t, n) for t in sorted(TIERS) for n in (1, 3, 7)])
def test_verify_api_counts_gives_the_dispatcher_the_key_and_one_share_of_the_limits(tier, instances):
    """POST /verify asks Dome for one count per wallet: with verify_api_counts the dispatcher (one
    instance) takes a fixed share, one more fetcher's floor; the fetchers keep the whole key as their
    ceiling and pace themselves by the key's rate-limit headers, which count the dispatcher's requests."""
    plan = checks.plan(TF, verify_api_counts=True, dome_tier=tier, fetcher_max_instances=instances)
    assert checks.precondition_failures(plan) == []
    fetcher, dispatcher = services(plan)["fetcher"], services(plan)["dispatcher"]
    env, mine = checks.service_env(fetcher), checks.service_env(dispatcher)
    assert isinstance(mine["DOME_API_KEY"], Unknown) and mine["DOME_API_KEY"].path.startswith("secret:")
    assert (mine["DOME_TIER"], mine["DOME_API_BASE_URL"]) == ("custom", plan.var["dome_api_base_url"])
    assert checks.max_instances(dispatcher) == 1
    for key, window in (("DOME_RATE_PER_SECOND", 0), ("DOME_RATE_PER_10S", 1)):
        assert mine[key] == TIERS[tier][window] // (instances + 1) >= 1
        assert env[key] == TIERS[tier][window]  # each fetcher's ceiling: the whole key
        assert mine[key] * (checks.max_instances(fetcher) + 1) <= TIERS[tier][window]
    readers = {
        (g.get("role"), g.get("member").path)
        for g in plan.resources("google_secret_manager_secret_iam_member")
        if isinstance(g.get("member"), Unknown)
    }
    assert ("roles/secretmanager.secretAccessor", "module.dispatcher.service_account_member") in readers


def test_verify_api_counts_is_dome_only_and_says_when_the_tier_has_no_share_left():
    polymarket = checks.plan(TF, verify_api_counts=True, trade_source="polymarket")
    assert "DOME_API_KEY" not in checks.service_env(services(polymarket)["dispatcher"])
    assert len(polymarket.resources("google_secret_manager_secret_iam_member")) == 1  # the fetcher's
    full = checks.plan(TF, verify_api_counts=True, dome_tier="free", fetcher_max_instances=10)
    assert any(
        "use at most 9 instances (verify_api_counts takes one share)" in f for f in checks.precondition_failures(full)
    )


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_fetcher_concurrency_is_sized_from_the_tier(tier):
    fetcher = services(checks.plan(TF, dome_tier=tier))["fetcher"]
    env = checks.service_env(fetcher)
    sustained = min(env["DOME_RATE_PER_SECOND"], env["DOME_RATE_PER_10S"] / 10)
    concurrency = fetcher.blocks("template")[0].get("max_instance_request_concurrency")
    assert concurrency == max(1, min(32, -(-sustained // 1)))


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"dome_tier": "free", "fetcher_max_instances": 11}, "less than one request per window"),
        ({"dome_tier": "gold"}, "not a key of dome_tier_limits"),
        ({"trade_source": "polymarket", "polymarket_rate_per_10s": 5}, "less than one Polymarket request"),
        ({"fetch_budget_seconds": 280}, "fit the fetcher's push ack deadline"),
        ({"loader_flush_seconds": 580}, "fit the loader's push ack deadline"),
        ({"loader_concurrency": 10}, "at least loader_flush_files"),
    ],
)
def test_plan_time_guard_rejects_unsafe_settings(variables, message):
    failures = checks.precondition_failures(checks.plan(TF, **variables))
    assert any(message in f for f in failures), failures


def test_defaults_pass_every_validation_and_precondition(plan):
    assert checks.validation_failures(plan) == []
    assert checks.precondition_failures(plan) == []


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"traders_table": "just_a_table"}, "traders_table"),
        ({"dispatch_attempt_deadline_seconds": 10}, "dispatch_attempt_deadline_seconds"),
        ({"operator_members": ["allUsers"]}, "operator_members"),
        ({"trade_source": "goldsky"}, "trade_source"),
    ],
)
def test_variable_validation_rejects_bad_values(variables, variable):
    failures = checks.validation_failures(checks.plan(TF, **variables))
    assert any(f.startswith(f"var.{variable}:") for f in failures), failures


def test_each_service_gets_the_environment_it_reads(plan):
    common = {
        "GCP_PROJECT",
        "BQ_DATASET",
        "BQ_STAGING_DATASET",
        "BQ_LOCATION",
        "GCS_BUCKET",
        "OIDC_AUDIENCE",
        "LOG_LEVEL",
    }
    wanted = {
        "dispatcher": common
        | {
            "TRADERS_TABLE",
            "TRADE_SOURCE",
            "LEASE_SECONDS",
            "MAX_IN_FLIGHT",
            "SYNC_DAILY",
            "SYNC_HOUR_UTC",
            "SYNC_LOOKBACK_SECONDS",
            "ALLOWED_SCHEDULER_EMAILS",
            "ALLOWED_OPERATOR_EMAILS",
        },
        "fetcher": common
        | {
            "TRADE_SOURCE",
            "DOME_API_BASE_URL",
            "DOME_API_KEY",
            "DOME_RATE_PER_SECOND",
            "DOME_RATE_PER_10S",
            "POLYMARKET_RATE_PER_10S",
            "FETCHER_MAX_INSTANCES",
            "FETCH_BUDGET_SECONDS",
            "FETCH_MAX_PAGES",
            "ALLOWED_PUSH_EMAILS",
            "ALLOWED_OPERATOR_EMAILS",
        },
        "loader": common | {"LOADER_FLUSH_FILES", "LOADER_FLUSH_SECONDS", "ALLOWED_PUSH_EMAILS"},
    }
    for name, keys in wanted.items():
        env = checks.service_env(services(plan)[name])
        assert keys <= set(env), f"{name} lacks {keys - set(env)}"
        assert env["GCS_BUCKET"] == "test-project-backfill-parts"
    fetcher = checks.service_env(services(plan)["fetcher"])
    assert isinstance(fetcher["DOME_API_KEY"], Unknown) and fetcher["DOME_API_KEY"].path.startswith("secret:")
    assert fetcher["DOME_API_KEY"].path.endswith("@latest")
    assert checks.service_env(services(plan)["dispatcher"])["TRADERS_TABLE"] == "test-project.polymarket.traders"


def test_an_external_traders_table_is_read_not_created():
    plan = checks.plan(TF, traders_table="other-project.crm.wallets")
    assert checks.validation_failures(plan) == []
    assert "traders" not in checks.resource_names(plan)["tables"]
    assert checks.service_env(services(plan)["dispatcher"])["TRADERS_TABLE"] == "other-project.crm.wallets"
    reads = {
        (r.get("project"), r.get("dataset_id"))
        for r in plan.resources("google_bigquery_dataset_iam_member")
        if r.get("role") == "roles/bigquery.dataViewer"
    }
    assert reads == {("other-project", "crm"), ("test-project", "polymarket")}


def test_push_receivers_are_internal_and_nothing_is_public(plan):
    assert {n: s.get("ingress") for n, s in services(plan).items() if n != "dispatcher"} == {
        "fetcher": "INGRESS_TRAFFIC_INTERNAL_ONLY",
        "loader": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    }
    members = [r.get("member") for r in plan.all_resources() if r.type.endswith("_iam_member")]
    assert not {"allUsers", "allAuthenticatedUsers"} & {m for m in members if isinstance(m, str)}


def _grants(plan: hcl.Module) -> set[tuple[str, str, str]]:
    """(service, role, target) for every grant to a service's own service account; a custom role by its
    resource, a grant with an IAM condition with its expression after the target."""
    out = set()
    for grant in plan.resources():
        if not grant.type.endswith("_iam_member"):
            continue
        member = grant.get("member")
        if not (isinstance(member, Unknown) and member.path.endswith(".service_account_member")):
            continue
        service = member.path.split(".")[1]
        target = next(
            (
                grant.get(a)
                for a in ("topic", "subscription", "bucket", "secret_id", "table_id", "dataset_id", "project")
                if a in grant.body
            ),
            None,
        )
        role = grant.get("role")
        target = target.path if isinstance(target, Unknown) else target
        condition = [c.get("expression") for c in grant.blocks("condition")]
        out.add((service, role.path if isinstance(role, Unknown) else role, " if ".join([target, *condition])))
    return out


def test_each_service_account_gets_only_what_it_needs(plan):
    """The grants, spelled out; tests/gcp/test_permissions.py proves each is used and none is missing."""
    bucket = "google_storage_bucket.parts.name"
    objects = "projects/_/buckets/test-project-backfill-parts/objects/"
    tmp, runs = f'resource.name.startsWith("{objects}tmp/")', f'resource.name.startsWith("{objects}runs/")'
    key_ref = "google_secret_manager_secret.dome_api_key.id"
    main, staging = "google_bigquery_dataset.main.dataset_id", "google_bigquery_dataset.staging.dataset_id"
    part_mover = "google_project_iam_custom_role.part_mover.id"
    table_writer = "google_project_iam_custom_role.table_writer.id"
    table = "google_bigquery_table.tables[{}].table_id".format
    assert _grants(plan) == {
        ("fetcher", "roles/pubsub.publisher", "wallets"),
        ("fetcher", "roles/pubsub.publisher", "files"),
        ("fetcher", "roles/pubsub.publisher", "wallets-dead-letter"),
        ("fetcher", "roles/storage.objectCreator", f"{bucket} if {tmp} || {runs}"),  # writes tmp/, copies to runs/
        ("fetcher", part_mover, f"{bucket} if {tmp}"),  # reads and deletes its temporary objects
        ("fetcher", "roles/secretmanager.secretAccessor", key_ref),
        ("loader", "roles/pubsub.publisher", "files-dead-letter"),  # files it cannot load
        ("loader", "roles/storage.objectViewer", f"{bucket} if {runs}"),  # its load jobs read the parts
        ("loader", "roles/bigquery.metadataViewer", main),  # check_schema
        ("loader", table_writer, table("trades")),
        ("loader", table_writer, table("checkpoints")),
        ("loader", table_writer, table("checkpoint_parts")),
        ("loader", table_writer, table("markets")),  # merges looked-up markets and events
        ("loader", table_writer, table("events")),
        ("loader", table_writer, table("market_refs")),  # records the condition ids the trades name
        ("loader", table_writer, table("lookup_misses")),  # ids the API did not know
        ("loader", "roles/bigquery.dataEditor", staging),
        ("loader", "roles/bigquery.jobUser", "test-project"),
        ("dispatcher", "roles/pubsub.publisher", "wallets"),
        ("dispatcher", "roles/pubsub.publisher", "files"),  # replays FileReady dead letters
        ("dispatcher", "roles/pubsub.subscriber", "wallets-dead-letter-pull"),  # collects letters into its table
        ("dispatcher", "roles/pubsub.subscriber", "files-dead-letter-pull"),
        ("dispatcher", "roles/bigquery.dataViewer", "polymarket"),
        ("dispatcher", table_writer, table("leases")),
        ("dispatcher", table_writer, table("dead_letters")),
        ("dispatcher", table_writer, table("lookups")),  # claims lookups in flight, as it does wallets
        ("dispatcher", "roles/bigquery.jobUser", "test-project"),
    }


def test_custom_roles_hold_only_what_their_grants_are_for(plan):
    roles = {r.name: sorted(r.get("permissions")) for r in plan.resources("google_project_iam_custom_role")}
    assert roles == {
        "part_mover": ["storage.objects.delete", "storage.objects.get"],
        "table_writer": ["bigquery.tables.get", "bigquery.tables.getData", "bigquery.tables.updateData"],
    }


def test_temporary_part_files_expire_after_a_day(plan):
    (bucket,) = plan.resources("google_storage_bucket")
    rules = [(r.blocks("condition")[0], r.blocks("action")[0]) for r in bucket.blocks("lifecycle_rule")]
    assert any(
        a.get("type") == "Delete" and c.get("age") == 1 and c.get("matches_prefix") == ["tmp/"] for c, a in rules
    )


def test_invokers_are_the_push_identities_and_the_scheduler(plan):
    invokers = {m.address: m.var["invokers"] for m in plan.all_modules() if "invokers" in m.config.variables}
    assert set(invokers["module.fetcher."]) == {"wallets-push"}
    assert set(invokers["module.loader."]) == {"files-push"}
    assert invokers["module.dispatcher."] == {"scheduler": "serviceAccount:<google_service_account.scheduler.email>"}


def test_scheduler_posts_dispatch_every_30_minutes_with_oidc(plan):
    (job,) = plan.resources("google_cloud_scheduler_job")
    target = job.blocks("http_target")[0]
    oidc = target.blocks("oidc_token")[0]
    assert job.get("schedule") == "*/30 * * * *"
    assert (target.get("http_method"), target.get("uri")) == ("POST", "<module.dispatcher.uri>/dispatch")
    assert oidc.get("audience") == f"https://dispatcher-{checks.TEST_PROJECT_NUMBER}.us-central1.run.app"
    assert isinstance(oidc.get("service_account_email"), Unknown)
    assert job.get("attempt_deadline") == "320s"
    assert job.blocks("retry_config")[0].get("retry_count") >= 1
    assert checks.timeout_seconds(services(plan)["dispatcher"]) >= 320


# --- Who may call which route (shared/web/auth.py, operators.tf) ---------------------------------------

ROUTES = {"dispatcher": dispatcher_app.ROUTES, "fetcher": fetcher_app.ROUTES, "loader": loader_app.ROUTES}


def test_each_service_is_told_the_callers_of_every_route_it_serves(plan):
    """A route whose ALLOWED_*_EMAILS is unset refuses everyone on Cloud Run (fail closed): each variable
    the service's routes name must be set by Terraform."""
    for name, routes in ROUTES.items():
        env = checks.service_env(services(plan)[name])
        needed = {callers.variable for callers in routes.values()}
        assert needed <= set(env), f"{name} lacks {needed - set(env)}"
        assert env["OIDC_AUDIENCE"] == f"https://{name}-{checks.TEST_PROJECT_NUMBER}.us-central1.run.app"


def test_the_allowed_callers_are_the_identities_that_call(plan, resources):
    (job,) = plan.resources("google_cloud_scheduler_job")
    dispatcher = checks.service_env(services(plan)["dispatcher"])
    scheduler = job.blocks("http_target")[0].blocks("oidc_token")[0].get("service_account_email")
    assert dispatcher["ALLOWED_SCHEDULER_EMAILS"] == scheduler == Unknown("google_service_account.scheduler.email")
    operator = Unknown("google_service_account.operator.email")
    assert dispatcher["ALLOWED_OPERATOR_EMAILS"] == operator
    assert checks.service_env(services(plan)["fetcher"])["ALLOWED_OPERATOR_EMAILS"] == operator
    pushes = {name: s["push_service"] for name, s in resources["subscriptions"].items() if "push_service" in s}
    modules = {m.address: m for m in plan.all_modules()}
    for name, service in pushes.items():
        # the receiver admits exactly the identity whose tokens this subscription pushes with
        allowed = checks.service_env(services(plan)[service])["ALLOWED_PUSH_EMAILS"]
        assert allowed == f"<module.push[{name!r}].invoker_email>"
        module = modules[f"module.push[{name!r}]."]
        (sub,) = [r for r in module.resources("google_pubsub_subscription") if r.name == "push"]
        pushed_as = sub.blocks("push_config")[0].blocks("oidc_token")[0].get("service_account_email")
        assert module.eval(module.config.outputs["invoker_email"]["value"]) == pushed_as


def test_operators_impersonate_one_account_that_may_invoke_only_the_dispatcher():
    members = ["group:backfill-ops@example.com", "user:oncall@example.com"]
    plan = checks.plan(TF, operator_members=members)
    assert checks.validation_failures(plan) == []
    (account,) = [a for a in plan.resources("google_service_account") if a.name == "operator"]
    assert account.get("account_id") == "backfill-operator"
    impersonate = plan.resources("google_service_account_iam_member")
    assert {(g.get("service_account_id"), g.get("role"), g.get("member")) for g in impersonate} == {
        (Unknown("google_service_account.operator.name"), "roles/iam.serviceAccountTokenCreator", m) for m in members
    }
    operator = "serviceAccount:<google_service_account.operator.email>"
    grants = [r for r in plan.all_resources() if r.type.endswith("_iam_member") and r.get("member") == operator]
    assert [(g.type, g.get("role"), g.get("name")) for g in grants] == [
        ("google_cloud_run_v2_service_iam_member", "roles/run.invoker", Unknown("module.dispatcher.name"))
    ]
    # the operators themselves hold nothing but the right to mint the account's tokens
    theirs = [r for r in plan.all_resources() if r.type.endswith("_iam_member") and r.get("member") in members]
    assert {g.get("role") for g in theirs} == {"roles/iam.serviceAccountTokenCreator"}
    outputs = plan.config.outputs
    assert "Impersonate" in outputs["operator_service_account"]["description"]


def test_every_service_is_internal_by_default_and_the_operator_path_is_documented(plan):
    assert {n: s.get("ingress") for n, s in services(plan).items()} == dict.fromkeys(
        ("dispatcher", "fetcher", "loader"), "INGRESS_TRAFFIC_INTERNAL_ONLY"
    )
    description = hcl.evaluate_raw(plan.config.variables["dispatcher_ingress"]["description"], {})
    assert "operator service account" in description and "gcloud scheduler jobs run" in description
    opened = checks.plan(TF, dispatcher_ingress="INGRESS_TRAFFIC_ALL")
    assert services(opened)["dispatcher"].get("ingress") == "INGRESS_TRAFFIC_ALL"


# --- BigQuery ----------------------------------------------------------------------------------------


def test_trades_is_month_partitioned_on_timestamp_and_clustered(plan):
    assert checks.partition_problems(plan) == []


def test_staging_dataset_expires_its_tables(plan, resources):
    staging = [
        d
        for d in plan.resources("google_bigquery_dataset")
        if d.get("dataset_id") == resources["bigquery"]["staging_dataset"]
    ]
    assert [d.get("default_table_expiration_ms") for d in staging] == [86400000]


def test_the_checked_in_schema_files_are_what_the_table_spec_generates():
    """infra/terraform/schemas/ is generated from shared/core/tables.py (python -m shared.core.tables --write);
    a column added to the spec and not regenerated would deploy a table the code does not match."""
    generated = terraform_files()
    on_disk = {p.name: p.read_text() for p in (TF / "schemas").glob("*.json")}
    assert on_disk == generated


def test_terraform_creates_every_table_of_the_spec_with_its_partitioning(plan):
    tables = {t.get("table_id"): t for t in plan.resources("google_bigquery_table")}
    assert set(tables) == {t.name for t in TABLES}
    for spec in TABLES:
        made = tables[spec.name]
        assert json.loads(made.get("schema")) == terraform_schema(spec)
        assert made.get("clustering") == (list(spec.clustering) or None)
        assert [p.get("field") for p in made.blocks("time_partitioning")] == (
            [spec.partition] if spec.partition else []
        )


# --- House rules -------------------------------------------------------------------------------------


def test_iam_grants_are_additive_members():
    assert checks.authoritative_iam(checks.configs(TF)) == []


def test_nothing_uses_count():
    assert checks.count_usage(checks.configs(TF)) == []


def test_every_variable_is_typed_and_described():
    configs = checks.configs(TF)
    assert len(configs) == 3
    assert checks.untyped_variables(configs) == []


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed; fmt check skipped")
def test_terraform_fmt_is_clean(tmp_path):
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(tmp_path / "none.tfrc")}
    (tmp_path / "none.tfrc").write_text("")
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TF)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- The checkers catch what they are for (bad snippets) ------------------------------------------

PUSH_AND_SERVICE = """
module "push" {
  source                           = "MODULES/push_subscription"
  project                          = "p"
  topic_name                       = "t"
  subscription_name                = "t-push"
  push_endpoint                    = "${module.svc.uri}/"
  oidc_audience                    = module.svc.audience
  ack_deadline_seconds             = %(ack)s
  minimum_backoff                  = "10s"
  maximum_backoff                  = "600s"
  max_delivery_attempts            = 5
  dead_letter_topic_name           = "t-dead-letter"
  dead_letter_subscription_name    = "t-dead-letter-pull"
  dead_letter_ack_deadline_seconds = 60
  dead_letter_message_retention    = "604800s"
  pubsub_service_agent_email       = "service-1@gcp-sa-pubsub.iam.gserviceaccount.com"
}

module "svc" {
  source          = "MODULES/cloud_run_service"
  project         = "p"
  project_number  = "1"
  region          = "us-central1"
  name            = "loader"
  image           = "img:1"
  concurrency     = 1
  max_instances   = %(max)s
  timeout_seconds = %(timeout)s
  env             = { FETCH_BUDGET_SECONDS = 240 }
}
"""


def push_and_service(tmp_path: Path, ack: int = 300, timeout: int = 300, most: int = 1) -> hcl.Module:
    """A push subscription into a Cloud Run service named loader whose work budget is 240 s."""
    return checks.plan(write(tmp_path, PUSH_AND_SERVICE % {"ack": ack, "timeout": timeout, "max": most}))


def test_snippet_with_sound_values_passes_the_evaluated_checks(tmp_path):
    snippet = push_and_service(tmp_path)
    assert checks.ack_deadline_problems(snippet) == []
    assert checks.timeout_problems(snippet) == []
    assert checks.single_writer_problems(snippet) == []
    assert checks.push_subscription_problems(snippet) == []
    assert checks.dead_letter_problems(snippet) == []


@pytest.mark.parametrize("ack", [120, 260, 700, 5])
def test_ack_checker_catches_a_deadline_shorter_than_the_budget_or_out_of_range(tmp_path, ack):
    problems = checks.ack_deadline_problems(push_and_service(tmp_path, ack=ack, timeout=900))
    assert problems and ("outside 10-600" in problems[0] or "< FETCH_BUDGET_SECONDS 240" in problems[0])


def test_timeout_checker_catches_a_service_that_cuts_pushes_short(tmp_path):
    assert "shorter than" in checks.timeout_problems(push_and_service(tmp_path, timeout=60))[0]


def test_single_writer_checker_catches_a_loader_that_scales_out(tmp_path):
    assert "can scale to 2" in checks.single_writer_problems(push_and_service(tmp_path, most=2))[0]


PUSH_SUBSCRIPTION = """
resource "google_pubsub_topic" "t" { name = "t" }
resource "google_pubsub_topic" "dead" { name = "t-dead-letter" }
resource "google_pubsub_subscription" "push" {
  name  = "t-push"
  topic = google_pubsub_topic.t.id
  push_config {
    push_endpoint = "https://example.run.app/"
    %(oidc)s
  }
  %(retry)s
  %(dead)s
}
"""
OIDC = 'oidc_token { service_account_email = "push@p.iam.gserviceaccount.com" }'
RETRY = 'retry_policy {\n minimum_backoff = "10s"\n maximum_backoff = "600s"\n}'
DEAD = "dead_letter_policy {\n dead_letter_topic = google_pubsub_topic.dead.id\n max_delivery_attempts = 5\n}"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"oidc": "", "retry": RETRY, "dead": DEAD}, "push without an OIDC token"),
        ({"oidc": OIDC, "retry": "", "dead": DEAD}, "no retry policy"),
        ({"oidc": OIDC, "retry": RETRY, "dead": ""}, "no dead-letter policy"),
        ({"oidc": OIDC, "retry": RETRY, "dead": DEAD.replace("= 5", "= 2")}, "outside 5-100"),
    ],
)
def test_push_checker_catches_a_missing_policy(tmp_path, parts, expected):
    problems = checks.push_subscription_problems(checks.plan(write(tmp_path, PUSH_SUBSCRIPTION % parts)))
    assert len(problems) == 1 and expected in problems[0]


def test_dead_letter_checker_catches_a_topic_without_subscription_or_agent_grants(tmp_path):
    snippet = checks.plan(write(tmp_path, PUSH_SUBSCRIPTION % {"oidc": OIDC, "retry": RETRY, "dead": DEAD}))
    problems = checks.dead_letter_problems(snippet)
    assert len(problems) == 3
    assert "without a subscription" in problems[0]
    assert "lacks roles/pubsub.publisher" in problems[1]
    assert "lacks roles/pubsub.subscriber" in problems[2]


def test_dead_letter_checker_accepts_the_grants_once_present(tmp_path):
    write(tmp_path, PUSH_SUBSCRIPTION % {"oidc": OIDC, "retry": RETRY, "dead": DEAD})
    write(
        tmp_path,
        """
        locals { agent = "serviceAccount:service-1@gcp-sa-pubsub.iam.gserviceaccount.com" }
        resource "google_pubsub_subscription" "dead" {
          name  = "t-dead-letter-pull"
          topic = google_pubsub_topic.dead.id
        }
        resource "google_pubsub_topic_iam_member" "agent" {
          topic  = google_pubsub_topic.dead.name
          role   = "roles/pubsub.publisher"
          member = local.agent
        }
        resource "google_pubsub_subscription_iam_member" "agent" {
          subscription = google_pubsub_subscription.push.name
          role         = "roles/pubsub.subscriber"
          member       = local.agent
        }
    """,
        name="grants.tf",
    )
    assert checks.dead_letter_problems(checks.plan(tmp_path)) == []


FLEET = """
variable "dome_tier" {
  type        = string
  description = "tier"
  default     = "dev"
}
variable "dome_tier_limits" {
  type        = map(object({ per_second = number, per_10s = number }))
  description = "limits"
  default = {
    free = { per_second = 10, per_10s = 100 }
    dev  = { per_second = 100, per_10s = 500 }
    pro  = { per_second = 300, per_10s = 3000 }
  }
}
locals {
  tier = var.dome_tier_limits[var.dome_tier]
}
module "fetcher" {
  source          = "MODULES/cloud_run_service"
  project         = "p"
  project_number  = "1"
  region          = "us-central1"
  name            = "fetcher"
  image           = "img:1"
  concurrency     = 4
  max_instances   = 3
  timeout_seconds = 300
  env = {
    DOME_RATE_PER_SECOND  = %(scale)s * local.tier.per_second
    DOME_RATE_PER_10S     = %(scale)s * local.tier.per_10s
    FETCHER_MAX_INSTANCES = %(instances)s
  }
}
"""


def test_fleet_checker_catches_a_ceiling_above_the_key(tmp_path):
    assert checks.fleet_rate_problems(write(tmp_path / "key", FLEET % {"scale": 1, "instances": 3})) == []
    problems = checks.fleet_rate_problems(write(tmp_path / "twice", FLEET % {"scale": 2, "instances": 3}))
    assert "free: one instance's DOME_RATE_PER_SECOND=20 exceeds the tier's 10 per_second" in problems


def test_fleet_checker_catches_a_fleet_size_that_is_not_cloud_runs(tmp_path):
    """Told 1 while Cloud Run may run 3, every instance would take the whole key as its floor."""
    problems = checks.fleet_rate_problems(write(tmp_path, FLEET % {"scale": 1, "instances": 1}))
    assert "free: FETCHER_MAX_INSTANCES=1 is not the 3 instances Cloud Run may run" in problems


def test_fleet_checker_catches_instances_left_without_requests(tmp_path):
    snippet = write(tmp_path, (FLEET % {"scale": 1, "instances": 30}).replace("= 3\n", "= 30\n"))
    assert "free: DOME_RATE_PER_SECOND=10 / 30 instances gives each instance no requests" in checks.fleet_rate_problems(
        snippet
    )


def test_name_checker_catches_a_name_hard_coded_differently(tmp_path, resources):
    (tmp_path / "resources.yaml").write_text(yaml.safe_dump(resources))
    snippet = checks.plan(
        write(
            tmp_path,
            """
        locals { resources = yamldecode(file("${path.module}/resources.yaml")) }
        resource "google_pubsub_topic" "topics" {
          for_each = local.resources.topics
          name     = each.key == "wallets" ? "wallet" : each.key
        }
    """,
        )
    )
    problems = checks.name_problems(snippet, resources)
    assert any(p.startswith("topics: terraform creates") and "'wallet'" in p for p in problems)


def test_partition_checker_catches_day_partitions_and_missing_clustering(tmp_path):
    snippet = checks.plan(
        write(
            tmp_path,
            """
        resource "google_bigquery_table" "trades" {
          dataset_id = "d"
          table_id   = "trades"
          clustering = ["wallet_address"]
          time_partitioning {
            type  = "DAY"
            field = "timestamp"
          }
        }
    """,
        )
    )
    problems = checks.partition_problems(snippet)
    assert len(problems) == 2 and "DAY" in problems[0] and "clustering" in problems[1]


def test_bucket_checker_catches_public_access_and_a_missing_lifecycle(tmp_path, resources):
    snippet = checks.plan(
        write(
            tmp_path,
            """
        resource "google_storage_bucket" "parts" {
          name                        = "p-backfill-parts"
          uniform_bucket_level_access = true
          public_access_prevention    = "inherited"
        }
    """,
        )
    )
    problems = checks.bucket_problems(snippet, resources)
    assert len(problems) == 2 and "public access" in problems[0] and "lifecycle" in problems[1]


def test_static_checkers_catch_bindings_count_and_undescribed_variables(tmp_path):
    write(
        tmp_path,
        """
        variable "untyped" { description = "no type" }
        variable "undescribed" { type = string }
        resource "google_pubsub_topic_iam_binding" "all" {
          topic   = "t"
          role    = "roles/pubsub.publisher"
          members = ["serviceAccount:a@p.iam.gserviceaccount.com"]
        }
        resource "google_project_iam_policy" "project" {
          project     = "p"
          policy_data = "{}"
        }
        resource "google_pubsub_topic" "numbered" {
          count = 2
          name  = "t-${count.index}"
        }
        module "numbered" {
          source = "MODULES/cloud_run_service"
          count  = 1
        }
    """,
    )
    config = [hcl.load_config(tmp_path)]
    assert len(checks.authoritative_iam(config)) == 2
    assert len(checks.count_usage(config)) == 2
    assert [p.split(": ")[1] for p in checks.untyped_variables(config)] == [
        "variable untyped has no type",
        "variable undescribed has no description",
    ]
