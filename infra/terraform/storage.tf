# Part files: runs/<run>/<wallet>/<part>.jsonl, written once by the fetcher, loaded by the loader.
resource "google_storage_bucket" "parts" {
  #checkov:skip=CKV_GCP_78:Versioning would keep noncurrent copies of disposable files only: a part is staged under tmp/ and renamed (copy then delete) to its deterministic runs/ name, a retried part rewrites that name with the same rows, every part is regenerable from the API by replaying its wallet, and the lifecycle rule deletes parts after delete_after_days anyway; the record of truth is BigQuery, not this bucket.
  #checkov:skip=CKV_GCP_62:Usage logs need a second bucket and duplicate Cloud Audit Logs: only the services' own accounts hold object roles here, and their object reads and writes are recorded as Data Access audit logs for storage.googleapis.com once the project or organization audit policy enables them (outside this configuration).
  project                     = var.project
  name                        = local.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  # Parts are loaded within minutes; keep them resources.yaml's N days for replays and audits, then delete.
  lifecycle_rule {
    condition {
      age            = local.resources.bucket.delete_after_days
      matches_prefix = [local.resources.bucket.part_prefix]
    }
    action {
      type = "Delete"
    }
  }

  # A fetcher that dies between writing a part under tmp/ and moving it leaves the temporary object
  # behind (iam.tf: local.part_tmp_prefix); a retry writes a new one, so a day is plenty.
  lifecycle_rule {
    condition {
      age            = 1
      matches_prefix = [local.part_tmp_prefix]
    }
    action {
      type = "Delete"
    }
  }

  # Deleted parts are not worth paying for again as soft-deleted copies.
  soft_delete_policy {
    retention_duration_seconds = 0
  }

  # Optional CMEK (var.storage_kms_key_name): the bucket's default key for new objects; none by default.
  dynamic "encryption" {
    for_each = var.storage_kms_key_name == null ? [] : [var.storage_kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_project_service.this]
}
