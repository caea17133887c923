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
    # dispatcher: one task per wallet, and replays, which put a dead letter back on the topic it came
    # from (wallets or files); it parks invalid addresses in its dead-letter table, not on a topic
    dispatcher-publishes-tasks = { topic = local.consumed_topic["fetcher"], member = local.dispatcher }
    dispatcher-replays-files   = { topic = local.consumed_topic["loader"], member = local.dispatcher }
  }

  # The dispatcher pulls the dead letters of every push subscription into its dead-letter table.
  dead_letter_readers = { for name, pull in local.dead_letter_pull : "${pull}-subscriber" => { subscription = pull, role = "roles/pubsub.subscriber" } }

  bucket_grants = {
    # create-only writes (ifGenerationMatch=0) and reading back; never overwrite or delete
    fetcher-creates-parts = { role = "roles/storage.objectCreator", member = local.fetcher }
    fetcher-reads-parts   = { role = "roles/storage.objectViewer", member = local.fetcher }
    loader-reads-parts    = { role = "roles/storage.objectViewer", member = local.loader }
  }

  # The loader loads into staging and MERGEs into trades/checkpoints/checkpoint_parts.
  loader_datasets = {
    main    = google_bigquery_dataset.main.dataset_id
    staging = google_bigquery_dataset.staging.dataset_id
  }

  # The dispatcher reads the wallets and the checkpoints (read-only: it runs no DML on tables the
  # loader merges into, design rule 9) and writes only the leases table.
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

resource "google_storage_bucket_iam_member" "parts" {
  for_each = local.bucket_grants

  bucket = google_storage_bucket.parts.name
  role   = each.value.role
  member = each.value.member
}

resource "google_secret_manager_secret_iam_member" "fetcher_reads_api_key" {
  project   = var.project
  secret_id = google_secret_manager_secret.dome_api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.fetcher
}

resource "google_bigquery_dataset_iam_member" "loader_edits" {
  for_each = local.loader_datasets

  project    = var.project
  dataset_id = each.value
  role       = "roles/bigquery.dataEditor"
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
  for_each = toset(["leases", "dead_letters"])

  project    = var.project
  dataset_id = google_bigquery_dataset.main.dataset_id
  table_id   = google_bigquery_table.tables[each.key].table_id
  role       = "roles/bigquery.dataEditor"
  member     = local.dispatcher
}

# Running queries and load jobs is a project-level permission; nothing else is granted on the project.
resource "google_project_iam_member" "bigquery_job_user" {
  for_each = local.bigquery_job_users

  project = var.project
  role    = "roles/bigquery.jobUser"
  member  = each.value
}
