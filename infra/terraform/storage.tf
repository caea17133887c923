# Part files: runs/<run>/<wallet>/<part>.jsonl, written once by the fetcher, loaded by the loader.
resource "google_storage_bucket" "parts" {
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

  # Deleted parts are not worth paying for again as soft-deleted copies.
  soft_delete_policy {
    retention_duration_seconds = 0
  }

  depends_on = [google_project_service.this]
}
