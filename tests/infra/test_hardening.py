"""infra/terraform hardening: optional customer-managed keys, images pinned to one build, dataset access.

Evaluated like tests/infra/test_terraform.py (tests/infra/hcl.py, no provider). With every key null the
resources carry no encryption setting at all (exactly the configuration before the variables existed);
with keys, every resource that holds data is encrypted with its key, and keys in the wrong location are
refused at plan time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.core.tables import TABLES
from tests.infra import checks, hcl

TF = Path(__file__).resolve().parents[2] / "infra" / "terraform"
KEY = "projects/kms-project/locations/{location}/keyRings/backfill/cryptoKeys/{name}"
KEYS = {
    "storage_kms_key_name": KEY.format(location="us-central1", name="parts"),
    "bigquery_kms_key_name": KEY.format(location="us", name="warehouse"),
    "pubsub_kms_key_name": KEY.format(location="us-central1", name="messages"),
    "secret_kms_key_name": KEY.format(location="global", name="api-key"),
    "artifact_registry_kms_key_name": KEY.format(location="us-central1", name="images"),
}


def encryption(plan: hcl.Module) -> dict[str, object]:
    """address => the key each data-holding resource is encrypted with (None: Google-managed, nothing set)."""
    out: dict[str, object] = {}
    for r in plan.all_resources():
        if r.type == "google_storage_bucket":
            out[r.address] = [b.get("default_kms_key_name") for b in r.blocks("encryption")] or None
        elif r.type == "google_bigquery_dataset":
            out[r.address] = [b.get("kms_key_name") for b in r.blocks("default_encryption_configuration")] or None
        elif r.type == "google_bigquery_table":
            out[r.address] = [b.get("kms_key_name") for b in r.blocks("encryption_configuration")] or None
        elif r.type in ("google_pubsub_topic", "google_artifact_registry_repository"):
            out[r.address] = r.get("kms_key_name")
        elif r.type == "google_secret_manager_secret":
            auto = [a for rep in r.blocks("replication") for a in rep.blocks("auto")]
            out[r.address] = [
                c.get("kms_key_name") for a in auto for c in a.blocks("customer_managed_encryption")
            ] or None
    return out


# --- Customer-managed keys ---------------------------------------------------------------------------


def test_without_keys_nothing_carries_an_encryption_setting():
    found = encryption(checks.plan(TF))
    assert len(found) == 1 + 2 + len(TABLES) + 4 + 1 + 1  # bucket, datasets, tables, topics, repository, secret
    assert {address: key for address, key in found.items() if key is not None} == {}


def test_each_key_encrypts_the_resources_it_is_for():
    plan = checks.plan(TF, **KEYS)
    assert checks.validation_failures(plan) == []
    assert checks.precondition_failures(plan) == []
    wanted = {
        "google_storage_bucket": [KEYS["storage_kms_key_name"]],
        "google_bigquery_dataset": [KEYS["bigquery_kms_key_name"]],
        "google_bigquery_table": [KEYS["bigquery_kms_key_name"]],
        "google_pubsub_topic": KEYS["pubsub_kms_key_name"],
        "google_artifact_registry_repository": KEYS["artifact_registry_kms_key_name"],
        "google_secret_manager_secret": [KEYS["secret_kms_key_name"]],
    }
    for address, key in encryption(plan).items():
        rtype = next(t for t in wanted if f"{t}." in address)
        assert key == wanted[rtype], address


def test_the_service_agents_to_grant_on_the_keys_are_reported():
    agents = checks.plan(TF).local["cmek_service_agents"]
    number = checks.TEST_PROJECT_NUMBER
    assert agents == {
        "storage": f"service-{number}@gs-project-accounts.iam.gserviceaccount.com",
        "bigquery": f"bq-{number}@bigquery-encryption.iam.gserviceaccount.com",
        "pubsub": f"service-{number}@gcp-sa-pubsub.iam.gserviceaccount.com",
        "secret": f"service-{number}@gcp-sa-secretmanager.iam.gserviceaccount.com",
        "artifact_registry": f"service-{number}@gcp-sa-artifactregistry.iam.gserviceaccount.com",
    }


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"storage_kms_key_name": "parts-key"}, "storage_kms_key_name"),
        ({"bigquery_kms_key_name": "projects/p/keyRings/r/cryptoKeys/k"}, "bigquery_kms_key_name"),
        ({"pubsub_kms_key_name": "projects/p/locations/l/keyRings/r"}, "pubsub_kms_key_name"),
        ({"secret_kms_key_name": KEY.format(location="us-central1", name="k")}, "secret_kms_key_name"),
        ({"artifact_registry_kms_key_name": ""}, "artifact_registry_kms_key_name"),
    ],
)
def test_a_malformed_key_or_a_regional_secret_key_is_rejected(variables, variable):
    failures = checks.validation_failures(checks.plan(TF, **variables))
    assert any(f.startswith(f"var.{variable}:") for f in failures), failures


def test_the_pubsub_key_reaches_the_module_and_is_validated_there_too():
    plan = checks.plan(TF, pubsub_kms_key_name="not-a-key")
    failures = checks.validation_failures(plan)
    assert any(f.startswith("module.push[") and "var.kms_key_name" in f for f in failures), failures


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"storage_kms_key_name": KEY.format(location="europe-west1", name="k")},
            "storage_kms_key_name must be a key in us-central1",
        ),
        (
            {"artifact_registry_kms_key_name": KEY.format(location="us", name="k")},
            "artifact_registry_kms_key_name must be a key in us-central1",
        ),
        (
            {"bigquery_kms_key_name": KEY.format(location="us-central1", name="k")},
            "bigquery_kms_key_name must be a key in us ",
        ),
        (
            {
                "bigquery_location": "EU",
                "region": "europe-west1",
                "bigquery_kms_key_name": KEY.format(location="eu", name="k"),
            },
            "must be a key in europe",
        ),
    ],
)
def test_a_key_in_the_wrong_location_fails_the_plan(variables, message):
    failures = checks.precondition_failures(checks.plan(TF, **variables))
    assert any(message in f for f in failures), failures


@pytest.mark.parametrize(
    ("location", "key_location"),
    [("US", "us"), ("EU", "europe"), ("europe-west1", "europe-west1"), ("us-central1", "us-central1")],
)
def test_bigquery_keys_follow_the_datasets_location(location, key_location):
    plan = checks.plan(
        TF, bigquery_location=location, bigquery_kms_key_name=KEY.format(location=key_location, name="k")
    )
    assert checks.precondition_failures(plan) == []


# --- Images: one build per deployment ---------------------------------------------------------------


def test_image_tag_is_required_and_never_latest():
    assert "default" not in hcl.load_config(TF).variables["image_tag"]
    for tag in ("latest", "LATEST"):
        failures = checks.validation_failures(checks.plan(TF, image_tag=tag))
        assert any(f.startswith("var.image_tag:") and "not latest" in f for f in failures), failures
    assert checks.validation_failures(checks.plan(TF, image_tag="3f9c2d1")) == []


def test_images_default_to_the_tag_and_may_be_pinned_by_digest():
    plan = checks.plan(TF, image_tag="3f9c2d1")
    repository = "us-central1-docker.pkg.dev/test-project/backfill"
    assert plan.local["images"] == {s: f"{repository}/{s}:3f9c2d1" for s in ("dispatcher", "fetcher", "loader")}
    digest = f"{repository}/fetcher@sha256:{'a' * 64}"
    pinned = checks.plan(TF, images={"fetcher": digest})
    assert checks.validation_failures(pinned) == []
    assert pinned.local["images"]["fetcher"] == digest
    assert (
        checks.cloud_run_services(pinned)["fetcher"].blocks("template")[0].blocks("containers")[0].get("image")
        == digest
    )


def test_an_explicit_latest_image_is_rejected():
    failures = checks.validation_failures(checks.plan(TF, images={"loader": "example.com/loader:latest"}))
    assert any(f.startswith("var.images:") for f in failures), failures


def test_the_image_repository_refuses_to_move_a_tag():
    (repository,) = checks.plan(TF).resources("google_artifact_registry_repository")
    assert [c.get("immutable_tags") for c in repository.blocks("docker_config")] == [True]


# --- BigQuery access ----------------------------------------------------------------------------------


def test_datasets_declare_no_authoritative_access_blocks():
    """`access` on google_bigquery_dataset replaces the whole ACL and would undo the additive grants of
    iam.tf on every apply (and theirs it): access is granted in iam.tf only, as _member resources."""
    for dataset in checks.plan(TF).resources("google_bigquery_dataset"):
        assert dataset.blocks("access") == [] and "access" not in dataset.body, dataset.address
    assert checks.authoritative_iam(checks.configs(TF)) == []
