"""tests/infra/grants.py reads a grant's scope the way IAM applies it: shown on small snippets, so the
permission proof (tests/gcp/test_permissions.py) can fail for the right reasons."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from tests.infra import checks, grants

MODULES = Path(__file__).resolve().parents[2] / "infra" / "terraform" / "modules"
SERVICE = """
module "fetcher" {
  source          = "MODULES/cloud_run_service"
  project         = "p"
  project_number  = "1"
  region          = "us-central1"
  name            = "fetcher"
  image           = "img:1"
  concurrency     = 1
  max_instances   = 1
  timeout_seconds = 60
}
"""
BUCKET_OBJECTS = "projects/_/buckets/b/objects/"


def snippet(tmp_path: Path, text: str) -> list[grants.Grant]:
    (tmp_path / "main.tf").write_text(dedent(SERVICE + text).replace("MODULES", str(MODULES)))
    return grants.grants(checks.plan(tmp_path))


def need(permission: str, resource: str) -> dict[str, set[tuple[str, str, str]]]:
    return {"fetcher": {(permission, resource, "test")}}


def test_a_topic_grant_covers_that_topic_only(tmp_path):
    given = snippet(
        tmp_path,
        """
        resource "google_pubsub_topic_iam_member" "t" {
          project = "p"
          topic   = "files"
          role    = "roles/pubsub.publisher"
          member  = module.fetcher.service_account_member
        }
        """,
    )
    assert grants.check(need("pubsub.topics.publish", "projects/p/topics/files"), given).ok
    assert grants.check(need("pubsub.topics.publish", "projects/p/topics/files-dead-letter"), given).missing


def test_a_table_grant_covers_that_table_and_a_dataset_grant_all_of_its_tables(tmp_path):
    given = snippet(
        tmp_path,
        """
        resource "google_bigquery_table_iam_member" "t" {
          project    = "p"
          dataset_id = "d"
          table_id   = "leases"
          role       = "roles/bigquery.dataEditor"
          member     = module.fetcher.service_account_member
        }
        resource "google_bigquery_dataset_iam_member" "d" {
          project    = "p"
          dataset_id = "d"
          role       = "roles/bigquery.dataViewer"
          member     = module.fetcher.service_account_member
        }
        """,
    )
    table, dataset = given
    assert table.covers("bigquery.tables.updateData", "projects/p/datasets/d/tables/leases")
    assert not table.covers("bigquery.tables.updateData", "projects/p/datasets/d/tables/trades")
    assert dataset.covers("bigquery.tables.getData", "projects/p/datasets/d/tables/trades")
    assert not dataset.covers("bigquery.tables.getData", "projects/p/datasets/d2/tables/trades")
    assert not dataset.covers("bigquery.tables.updateData", "projects/p/datasets/d/tables/trades")


def test_a_condition_on_an_object_prefix_covers_that_prefix_only_and_a_custom_role_its_own_permissions(tmp_path):
    given = snippet(
        tmp_path,
        f"""
        resource "google_project_iam_custom_role" "mover" {{
          project     = "p"
          role_id     = "mover"
          title       = "mover"
          permissions = ["storage.objects.delete"]
        }}
        resource "google_storage_bucket_iam_member" "b" {{
          bucket = "b"
          role   = google_project_iam_custom_role.mover.id
          member = module.fetcher.service_account_member
          condition {{
            title      = "tmp"
            expression = "resource.name.startsWith(\\"{BUCKET_OBJECTS}tmp/\\")"
          }}
        }}
        """,
    )
    assert grants.check(need("storage.objects.delete", f"{BUCKET_OBJECTS}tmp/a.jsonl"), given).ok
    assert grants.check(need("storage.objects.delete", f"{BUCKET_OBJECTS}runs/a.jsonl"), given).missing
    assert grants.check(need("storage.objects.get", f"{BUCKET_OBJECTS}tmp/a.jsonl"), given).missing


def test_a_condition_it_cannot_read_is_refused_not_guessed(tmp_path):
    with pytest.raises(grants.UnsupportedCondition):
        snippet(
            tmp_path,
            """
            resource "google_storage_bucket_iam_member" "b" {
              bucket = "b"
              role   = "roles/storage.objectViewer"
              member = module.fetcher.service_account_member
              condition {
                title      = "later"
                expression = "request.time < timestamp(\\"2030-01-01T00:00:00Z\\")"
              }
            }
            """,
        )


def test_a_grant_nothing_needs_is_reported_unused(tmp_path):
    given = snippet(
        tmp_path,
        """
        resource "google_project_iam_member" "jobs" {
          project = "p"
          role    = "roles/bigquery.jobUser"
          member  = module.fetcher.service_account_member
        }
        """,
    )
    verdict = grants.check(need("pubsub.topics.publish", "projects/p/topics/files"), given)
    assert [g.role for g in verdict.unused] == ["roles/bigquery.jobUser"] and verdict.missing
