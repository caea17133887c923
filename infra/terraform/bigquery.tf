resource "google_bigquery_dataset" "main" {
  project     = var.project
  dataset_id  = local.dataset
  location    = var.bigquery_location
  description = "Polymarket trades per wallet, with the checkpoints that make the backfill resumable."
  labels      = var.labels

  depends_on = [google_project_service.this]
}

# One uniquely named table per load batch (the 1,500 modifications/day quota is keyed by table name);
# the default expiration removes the ones a crash left behind.
resource "google_bigquery_dataset" "staging" {
  project                     = var.project
  dataset_id                  = local.staging_dataset
  location                    = var.bigquery_location
  default_table_expiration_ms = local.resources.bigquery.staging_table_expiration_ms
  description                 = "Load-batch staging tables, one per batch, expiring on their own."
  labels                      = var.labels

  depends_on = [google_project_service.this]
}

# Every table of the table spec (shared/core/tables.py, generated into schemas/): columns from
# schemas/<name>.json, partitioning and clustering from schemas/tables.json. trades: MONTH partitions on
# timestamp so a batch touches few, clustered on wallet_address, condition_id.
resource "google_bigquery_table" "tables" {
  for_each = local.managed_tables

  project             = var.project
  dataset_id          = google_bigquery_dataset.main.dataset_id
  table_id            = each.key
  schema              = file("${path.module}/schemas/${each.key}.json")
  clustering          = each.value.clustering
  deletion_protection = var.deletion_protection
  labels              = var.labels

  dynamic "time_partitioning" {
    for_each = each.value.partition_field == null ? [] : [each.value.partition_field]
    content {
      type  = "MONTH"
      field = time_partitioning.value
    }
  }
}
