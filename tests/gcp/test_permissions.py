"""Permissions proven, not guessed (issue 12): every Google API method each service calls, recorded on the
emulators (tests/gcp/service_walk.py, tests/gcp/recording.py), against the grants Terraform gives that
service's account (tests/infra/grants.py), with the permission table of tests/infra/permissions.py.

Every permission a service uses on a resource must be granted to its account on that resource (a topic
grant covers its topic, a table grant its table, a condition its object prefix), and every grant must be
needed by some recorded call: dropping any one of them denies one. The recorded names are mapped to the
ones Terraform gives (project test-project, datasets polymarket and polymarket_staging, the bucket
test-project-backfill-parts).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.gcp.recording import Call, Recorder
from tests.gcp.service_walk import World, recorded_walk
from tests.infra import checks, grants

pytestmark = [pytest.mark.emulators, pytest.mark.slow]

TF = Path(__file__).resolve().parents[2] / "infra" / "terraform"
PLAN = checks.plan(TF)
GRANTS = grants.grants(PLAN)


@pytest.fixture(scope="module")
def recorded(emulator_stack, tmp_path_factory) -> tuple[World, dict[str, Recorder]]:
    if emulator_stack.pubsub_skip_reason:
        pytest.skip(emulator_stack.pubsub_skip_reason)
    terraform = {
        "project": checks.TEST_PROJECT,
        "dataset": PLAN.local["dataset"],
        "staging_dataset": PLAN.local["staging_dataset"],
        "bucket": PLAN.local["bucket_name"],
    }
    with recorded_walk(emulator_stack, tmp_path_factory.mktemp("truth") / "truth.jsonl", terraform) as walked:
        yield walked


def needs(world: World, recorders: dict[str, Recorder]) -> dict[str, set[tuple[str, str, str]]]:
    """service -> (permission, resource as Terraform names it, why), plus what Cloud Run does as the
    service's identity: read the secrets of its secret environment variables."""
    out = {
        name: {(n.permission, world.terraform_name(n.resource), n.why) for n in r.needs()}
        for name, r in recorders.items()
    }
    for name, service in checks.cloud_run_services(PLAN).items():
        for var, value in checks.service_env(service).items():
            if getattr(value, "path", "").startswith("secret:"):
                secret = f"projects/{checks.TEST_PROJECT}/secrets/{PLAN.var['dome_api_key_secret_id']}"
                assert var == "DOME_API_KEY", f"{name}: {var} comes from a secret this test does not know"
                out[name].add(("secretmanager.versions.access", secret, f"Cloud Run: {var} from Secret Manager"))
    return out


def pattern(resource: str) -> str:
    """Object names by their first folder, staging tables by their prefix: tmp/*, polymarket_staging/rows_*."""
    if "/objects/" in resource:
        head, name = resource.split("/objects/", 1)
        return f"{head}/objects/{name.split('/')[0]}/*" if "/" in name else resource
    return re.sub(r"/tables/(\w+?)_[0-9a-f]{16,}$", r"/tables/\1_*", resource)


def report(verdict: grants.Verdict) -> str:
    missing = Counter((s, p, pattern(r), why.split(":")[0]) for s, p, r, why in verdict.missing)
    lines = [f"MISSING {s}: {p} on {r} ({why}, {n}x)" for (s, p, r, why), n in sorted(missing.items())]
    lines += [f"UNUSED {g.address}: {g.role} on {g.resource}" for g in verdict.unused]
    return "\n".join(lines)


# google-cloud-storage's own background read of the bucket's metadata, for its trace attributes: once per
# client, on a thread of its own, so present or not depending on timing (tests/infra/permissions.py).
OPTIONAL = {"storage.buckets.get:client-metadata"}


def methods(calls: list[Call]) -> set[str]:
    return {c.method for c in calls} - OPTIONAL


# --- the proof -------------------------------------------------------------------------------------


def test_every_permission_a_service_uses_is_granted_to_it_and_every_grant_is_used(recorded):
    world, recorders = recorded
    verdict = grants.check(needs(world, recorders), GRANTS)
    if not verdict.ok:
        pytest.fail("the grants are not what the services use:\n" + report(verdict), pytrace=False)


def test_a_custom_role_holds_no_permission_its_grants_do_not_use(recorded):
    world, recorders = recorded
    verdict = grants.check(needs(world, recorders), GRANTS)
    for role in {g.role for g in GRANTS if g.role.startswith("google_project_iam_custom_role.")}:
        mine = [g for g in GRANTS if g.role == role]
        idle = set.intersection(*(verdict.extra.get(g.address, set()) for g in mine))
        assert not idle, f"{role}: {sorted(idle)} used by none of {[g.address for g in mine]}"


@pytest.mark.parametrize("dropped", [g.address for g in GRANTS])
def test_without_any_one_grant_a_recorded_call_is_denied(recorded, dropped):
    world, recorders = recorded
    verdict = grants.check(needs(world, recorders), [g for g in GRANTS if g.address != dropped])
    assert verdict.missing, f"nothing recorded needs {dropped}"


def test_each_service_calls_these_methods_and_no_other(recorded):
    """A new call must come with its row in tests/infra/permissions.py and, if need be, a grant."""
    _, r = recorded
    assert methods(r["fetcher"].calls) == {
        "storage.objects.insert",  # the part under tmp/ (a resumable upload: initiate ...
        "storage.objects.insert:session",  # ... then its chunks)
        "storage.objects.get",  # rename: the temporary object's generation
        "storage.objects.copy",  # rename: to runs/ with ifGenerationMatch=0
        "storage.objects.delete",  # rename: the temporary object
        "google.pubsub.v1.Publisher/Publish",  # FileReady, continuations, its dead letters
    }
    assert methods(r["loader"].calls) == {
        "bigquery.tables.get",  # check_schema
        "bigquery.jobs.insert",  # load jobs, the CTAS of the batch, the MERGE script, reads of checkpoint_parts
        "bigquery.jobs.getQueryResults",
        "bigquery.tables.delete",  # the batch's staging tables
        "google.pubsub.v1.Publisher/Publish",  # its dead letters
    }
    assert methods(r["dispatcher"].calls) == {
        "bigquery.tables.get",
        "bigquery.jobs.insert",
        "bigquery.jobs.getQueryResults",
        "google.pubsub.v1.Publisher/Publish",
        "google.pubsub.v1.Subscriber/Pull",
        "google.pubsub.v1.Subscriber/Acknowledge",
    }


def test_a_final_part_name_is_written_create_only(recorded):
    """A part's final name is written with ifGenerationMatch=0 (a FileReady may already point at it), so
    the fetcher needs no delete permission there."""
    _, r = recorded
    copies = [c for c in r["fetcher"].calls if c.method == "storage.objects.copy"]
    replacing = [c.request for c in copies if "storage.objects.delete" in {n.permission for n in c.needs}]
    assert copies and not replacing, f"{len(replacing)} of {len(copies)} copies may replace an object"


def test_what_the_fetcher_writes_and_deletes_itself_expires_within_a_day(recorded):
    """Its temporary objects: a crash between the write and the rename leaves one behind."""
    world, r = recorded
    created = {c.resource for c in r["fetcher"].calls if c.method == "storage.objects.insert"}
    deleted = {c.resource for c in r["fetcher"].calls if c.method == "storage.objects.delete"}
    prefixes = {world.terraform_name(o).split("/objects/", 1)[1].split("/")[0] + "/" for o in created & deleted}
    assert prefixes == {"tmp/"}
    (bucket,) = PLAN.resources("google_storage_bucket")
    rules = [(rule.blocks("condition")[0], rule.blocks("action")[0]) for rule in bucket.blocks("lifecycle_rule")]
    expiring = {
        p for c, a in rules if a.get("type") == "Delete" and c.get("age") <= 1 for p in c.get("matches_prefix") or []
    }
    assert prefixes <= expiring, f"no lifecycle rule deletes {sorted(prefixes - expiring)} within a day"
