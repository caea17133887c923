# Access: no `access` blocks. They are authoritative (they replace the dataset's whole ACL, including
# the project owners/writers/readers BigQuery adds by default) and would fight the additive
# google_bigquery_dataset_iam_member / table-level grants in iam.tf on every apply, undoing one or the
# other. Who may read or write is stated once, in iam.tf, as _member grants (design rule 15).
resource "google_bigquery_dataset" "main" {
  #checkov:skip=CKV_GCP_81:CMEK is opt-in through var.bigquery_kms_key_name (null keeps Google-managed encryption, the default this check sees); the rows are public on-chain trades.
  project     = var.project
  dataset_id  = local.dataset
  location    = var.bigquery_location
  description = "Polymarket trades per wallet, with the checkpoints that make the backfill resumable."
  labels      = var.labels

  # Optional CMEK (var.bigquery_kms_key_name): the default key of every table created in the dataset.
  dynamic "default_encryption_configuration" {
    for_each = var.bigquery_kms_key_name == null ? [] : [var.bigquery_kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }

  depends_on = [google_project_service.this]
}

# One uniquely named table per load batch (the 1,500 modifications/day quota is keyed by table name);
# the default expiration removes the ones a crash left behind.
resource "google_bigquery_dataset" "staging" {
  #checkov:skip=CKV_GCP_81:CMEK is opt-in through var.bigquery_kms_key_name (null keeps Google-managed encryption, the default this check sees); staging holds copies of the same public trades for a day at most.
  project                     = var.project
  dataset_id                  = local.staging_dataset
  location                    = var.bigquery_location
  default_table_expiration_ms = local.resources.bigquery.staging_table_expiration_ms
  description                 = "Load-batch staging tables, one per batch, expiring on their own."
  labels                      = var.labels

  # Optional CMEK (var.bigquery_kms_key_name): the key of the loader's staging tables.
  dynamic "default_encryption_configuration" {
    for_each = var.bigquery_kms_key_name == null ? [] : [var.bigquery_kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }

  depends_on = [google_project_service.this]
}

# Every table of the table spec (shared/core/tables.py, generated into schemas/): columns from
# schemas/<name>.json, partitioning and clustering from schemas/tables.json. trades: MONTH partitions on
# timestamp so a batch touches few, clustered on wallet_address, condition_id.
resource "google_bigquery_table" "tables" {
  #checkov:skip=CKV_GCP_80:CMEK is opt-in through var.bigquery_kms_key_name (null keeps Google-managed encryption, the default this check sees); the rows are public on-chain trades and the pipeline's own bookkeeping.
  for_each = local.managed_tables

  project             = var.project
  dataset_id          = google_bigquery_dataset.main.dataset_id
  table_id            = each.key
  schema              = file("${path.module}/schemas/${each.key}.json")
  clustering          = each.value.clustering
  deletion_protection = var.deletion_protection
  labels              = var.labels

  # The dataset's default key, stated on each table too so the table's own encryption says what it is.
  dynamic "encryption_configuration" {
    for_each = var.bigquery_kms_key_name == null ? [] : [var.bigquery_kms_key_name]
    content {
      kms_key_name = encryption_configuration.value
    }
  }

  dynamic "time_partitioning" {
    for_each = each.value.partition_field == null ? [] : [each.value.partition_field]
    content {
      type  = "MONTH"
      field = time_partitioning.value
    }
  }
}
