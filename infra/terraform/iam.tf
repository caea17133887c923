# What each service account may do: additive _member grants only, on the narrowest resource that works.
# (Invoker grants live with the services; the Pub/Sub service agent's grants with the subscriptions.)

locals {
  dispatcher = module.dispatcher.service_account_member
  fetcher    = module.fetcher.service_account_member
  loader     = module.loader.service_account_member

  topic_publishers = {
    # fetcher: FileReady events, continuation tasks, and the wallets it dead-letters itself
    fetcher-publishes-files        = { topic = local.consumed_topic["loader"], member = local.fetcher }
    fetcher-publishes-tasks        = { topic = local.consumed_topic["fetcher"], member = local.fetcher }
    fetcher-publishes-dead-wallets = { topic = local.dead_letter_topic["fetcher"], member = local.fetcher }
    # loader: the FileReady events it cannot load (a missing or unreadable part file)
    loader-publishes-dead-files = { topic = local.dead_letter_topic["loader"], member = local.loader }
    # dispatcher: one task per wallet, and replays, which put a dead letter back on the topic it came
    # from (wallets or files); it parks invalid addresses in its dead-letter table, not on a topic
    dispatcher-publishes-tasks = { topic = local.consumed_topic["fetcher"], member = local.dispatcher }
    dispatcher-replays-files   = { topic = local.consumed_topic["loader"], member = local.dispatcher }
  }

  # The dispatcher pulls the dead letters of every push subscription into its dead-letter table.
  dead_letter_readers = { for name, pull in local.dead_letter_pull : "${pull}-subscriber" => { subscription = pull, role = "roles/pubsub.subscriber" } }

  # Part files: the fetcher writes each under tmp/ (shared/handlers/fetch.py), then copies it to its final
  # name under runs/ create-only (ifGenerationMatch=0: an existing part is never replaced, so no delete
  # there) and deletes the temporary object. Object-level grants, narrowed by IAM conditions on the name.
  part_tmp_prefix = "tmp/"
  objects         = "projects/_/buckets/${local.bucket_name}/objects/" # as IAM conditions name objects
  bucket_grants = {
    fetcher-creates-parts = {
      role      = "roles/storage.objectCreator"
      member    = local.fetcher
      condition = "resource.name.startsWith(\"${local.objects}${local.part_tmp_prefix}\") || resource.name.startsWith(\"${local.objects}${local.resources.bucket.part_prefix}\")"
    }
    # read and delete its own temporary objects only (a custom role: no predefined one is get + delete)
    fetcher-moves-tmp-parts = {
      role      = google_project_iam_custom_role.part_mover.id
      member    = local.fetcher
      condition = "resource.name.startsWith(\"${local.objects}${local.part_tmp_prefix}\")"
    }
    # the loader's load jobs read the finished parts with its credentials (no wildcard URIs: no list)
    loader-reads-parts = {
      role      = "roles/storage.objectViewer"
      member    = local.loader
      condition = "resource.name.startsWith(\"${local.objects}${local.resources.bucket.part_prefix}\")"
    }
  }

  # The loader loads into staging tables (created and dropped per batch) and MERGEs into the three tables
  # it alone writes (design rule 9); it reads the others' metadata only (check_schema at start-up).
  # The loader merges the trades and their bookkeeping, and the markets and events looked up for them.
  loader_tables = toset(["trades", "checkpoints", "checkpoint_parts", "market_refs", "markets", "events", "lookup_misses"])

  # The dispatcher reads the wallets and the checkpoints (read-only: it runs no DML on tables the
  # loader merges into, design rule 9) and writes only the leases and dead-letter tables.
  traders_parts = split(".", local.traders_table)
  dispatcher_read_datasets = {
    for ref in distinct(["${var.project}.${local.dataset}", "${local.traders_parts[0]}.${local.traders_parts[1]}"]) :
    ref => { project = split(".", ref)[0], dataset = split(".", ref)[1] }
  }

  bigquery_job_users = {
    dispatcher = local.dispatcher
    loader     = local.loader
  }
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = local.topic_publishers

  project = var.project
  topic   = each.value.topic
  role    = "roles/pubsub.publisher"
  member  = each.value.member

  depends_on = [module.push]
}

resource "google_pubsub_subscription_iam_member" "dispatcher_reads_dead_letters" {
  for_each = local.dead_letter_readers

  project      = var.project
  subscription = each.value.subscription
  role         = each.value.role
  member       = local.dispatcher

  depends_on = [module.push]
}

resource "google_project_iam_custom_role" "part_mover" {
  project     = var.project
  role_id     = "backfillPartMover"
  title       = "Backfill part mover"
  description = "Read and delete the fetcher's temporary part files (granted with a condition on tmp/)."
  permissions = ["storage.objects.get", "storage.objects.delete"]
}

resource "google_storage_bucket_iam_member" "parts" {
  for_each = local.bucket_grants

  bucket = google_storage_bucket.parts.name
  role   = each.value.role
  member = each.value.member

  condition {
    title      = each.key
    expression = each.value.condition
  }
}

resource "google_secret_manager_secret_iam_member" "fetcher_reads_api_key" {
  project   = var.project
  secret_id = google_secret_manager_secret.dome_api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.fetcher
}

# POST /verify compares with Dome's own counts only with var.verify_api_counts: then the dispatcher reads
# the key too (and takes one share of its limits, main.tf).
resource "google_secret_manager_secret_iam_member" "dispatcher_reads_api_key" {
  for_each = { for name, member in { dispatcher = local.dispatcher } : name => member if local.verify_api_counts }

  project   = var.project
  secret_id = google_secret_manager_secret.dome_api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}

# Reading and changing a table's rows, nothing else: dataEditor would also let its holder delete the table
# or change its schema. Granted on single tables (the loader's three, the dispatcher's two).
resource "google_project_iam_custom_role" "table_writer" {
  project     = var.project
  role_id     = "backfillTableWriter"
  title       = "Backfill table writer"
  description = "Query and DML on one table (granted per table); no delete, no schema change."
  permissions = ["bigquery.tables.get", "bigquery.tables.getData", "bigquery.tables.updateData"]
}

# Staging tables are created and dropped per batch: the staging dataset is the loader's to edit.
resource "google_bigquery_dataset_iam_member" "loader_stages" {
  project    = var.project
  dataset_id = google_bigquery_dataset.staging.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.loader
}

resource "google_bigquery_dataset_iam_member" "loader_reads_metadata" {
  project    = var.project
  dataset_id = google_bigquery_dataset.main.dataset_id
  role       = "roles/bigquery.metadataViewer"
  member     = local.loader
}

resource "google_bigquery_table_iam_member" "loader_writes" {
  for_each = local.loader_tables

  project    = var.project
  dataset_id = google_bigquery_dataset.main.dataset_id
  table_id   = google_bigquery_table.tables[each.key].table_id
  role       = google_project_iam_custom_role.table_writer.id
  member     = local.loader
}

resource "google_bigquery_dataset_iam_member" "dispatcher_reads" {
  for_each = local.dispatcher_read_datasets

  project    = each.value.project
  dataset_id = each.value.dataset
  role       = "roles/bigquery.dataViewer"
  member     = local.dispatcher

  depends_on = [google_bigquery_dataset.main]
}

# Table-level, so the dispatcher cannot write checkpoints or trades: it owns the leases and the dead-letter
# table (it moves the letters waiting on the dead-letter topics there, and marks them replayed).
resource "google_bigquery_table_iam_member" "dispatcher_writes" {
  for_each = toset(["leases", "dead_letters", "lookups"])

  project    = var.project
  dataset_id = google_bigquery_dataset.main.dataset_id
  table_id   = google_bigquery_table.tables[each.key].table_id
  role       = google_project_iam_custom_role.table_writer.id
  member     = local.dispatcher
}

# Running queries and load jobs is a project-level permission; nothing else is granted on the project.
resource "google_project_iam_member" "bigquery_job_user" {
  for_each = local.bigquery_job_users

  project = var.project
  role    = "roles/bigquery.jobUser"
  member  = each.value
}
