"""checkov over infra/terraform (framework terraform, the local modules through their calls): no failed check.

checkov runs from its own virtual environment (tests/infra/checkov_env.py: .cache/checkov/venv, built
from the hashed tests/infra/checkov.lock on first use). The test skips only when that install finds no
package index to download from; any other install failure, or any failed check, fails it.

A check that does not apply is skipped INLINE, in the resource, with its reason
(`#checkov:skip=CKV_...:why`); EXPECTED_SKIPS lists them so a new skip is a visible change here too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from textwrap import dedent

import pytest

from tests.infra import checkov_env

pytestmark = pytest.mark.slow

# (check, resource as checkov names it): each one justified where it is written.
EXPECTED_SKIPS = {
    ("CKV_GCP_62", "google_storage_bucket.parts"),  # access logs: Cloud Audit Logs instead
    ("CKV_GCP_78", "google_storage_bucket.parts"),  # versioning: disposable, regenerable part files
    ("CKV_GCP_80", "google_bigquery_table.tables"),  # CMEK: opt-in (bigquery_kms_key_name)
    ("CKV_GCP_81", "google_bigquery_dataset.main"),
    ("CKV_GCP_81", "google_bigquery_dataset.staging"),
    ("CKV_GCP_83", "module.push.google_pubsub_topic.this"),  # CMEK: opt-in (pubsub_kms_key_name)
    ("CKV_GCP_83", "module.push.google_pubsub_topic.dead_letter"),
    ("CKV_GCP_84", "google_artifact_registry_repository.images"),  # CMEK: opt-in (artifact_registry_kms_key_name)
}


def scan(directory: Path = checkov_env.TERRAFORM) -> dict:
    try:
        return checkov_env.scan(directory)
    except checkov_env.CheckovUnavailable as exc:
        pytest.skip(f"checkov=={checkov_env.CHECKOV_VERSION} could not be installed (no network): {exc}")


def _listing(checks: list[dict]) -> list[str]:
    return [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in checks]


@pytest.fixture(scope="module")
def report() -> dict:
    return scan()


def test_checkov_passes_every_check_on_the_configuration(report):
    summary, results = report["summary"], report["results"]
    assert summary["checkov_version"] == checkov_env.CHECKOV_VERSION
    assert summary["parsing_errors"] == 0
    assert results["failed_checks"] == [], "\n".join(_listing(results["failed_checks"]))
    assert summary["passed"] >= 20, summary  # it really scanned: the services, subscriptions, bucket, ...


def test_every_skip_is_inline_justified_and_expected(report):
    skipped = report["results"]["skipped_checks"]
    reasons = {
        (c["check_id"], c["resource"]): (c.get("check_result") or {}).get("suppress_comment", "") for c in skipped
    }
    assert set(reasons) == EXPECTED_SKIPS, "\n".join(_listing(skipped))
    short = {key: reason for key, reason in reasons.items() if len(reason.split()) < 8}
    assert short == {}, "every skip needs a real reason"


def test_checkov_fails_a_configuration_that_breaks_a_check(tmp_path):
    """The scan is real: a bucket without uniform access and with public access allowed fails."""
    (tmp_path / "main.tf").write_text(
        dedent(
            """
            resource "google_storage_bucket" "open" {
              name                        = "p-open"
              location                    = "us-central1"
              uniform_bucket_level_access = false
              public_access_prevention    = "inherited"
            }
            """
        )
    )
    failed = {c["check_id"] for c in scan(tmp_path)["results"]["failed_checks"]}
    assert {"CKV_GCP_29", "CKV_GCP_114"} <= failed, failed


@pytest.mark.parametrize(
    ("pip_output", "raised"),
    [
        (
            "WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(...: "
            "Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')'",
            checkov_env.CheckovUnavailable,
        ),
        ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.", RuntimeError),
        (
            "ERROR: Cannot install checkov==3.3.30 because these package versions have conflicting dependencies.",
            RuntimeError,
        ),
    ],
)
def test_only_an_unreachable_index_makes_the_install_skippable(tmp_path, monkeypatch, pip_output, raised):
    monkeypatch.setattr(checkov_env, "CACHE", tmp_path)
    monkeypatch.setattr(checkov_env, "VENV", tmp_path / "venv")
    monkeypatch.setattr(checkov_env, "STAMP", tmp_path / "venv" / ".installed")

    def fake_run(command, **kwargs):
        failed = "pip" in command
        return subprocess.CompletedProcess(command, 1 if failed else 0, "", pip_output if failed else "")

    monkeypatch.setattr(checkov_env.subprocess, "run", fake_run)
    with pytest.raises(raised):
        checkov_env.ensure()
    assert not (tmp_path / "venv" / ".installed").exists()
