# The wallet-trade backfill on Google Cloud (docs/design.md, "Shape"):
#   Scheduler -> dispatcher -> topic wallets -push-> fetcher -> GCS parts -> topic files -push-> loader -> BigQuery
# storage.tf, bigquery.tf, iam.tf, scheduler.tf, monitoring.tf and operators.tf hold the rest.

locals {
  # THE resource names: the file the local emulator bootstrap reads too, so the two cannot drift.
  resources = yamldecode(file("${path.module}/../resources.yaml"))

  push_subscriptions = {
    for name, s in local.resources.subscriptions : name => s if lookup(s, "push_service", null) != null
  }
  # The subscriptions that push nowhere are the dead-letter topics' pull subscriptions: topic => name.
  pull_subscription_of_topic = {
    for name, s in local.resources.subscriptions : s.topic => name if lookup(s, "push_service", null) == null
  }
  # push subscription => the pull subscription of its dead-letter topic
  dead_letter_pull = {
    for name, s in local.push_subscriptions : name => local.pull_subscription_of_topic[s.dead_letter.topic]
  }
  # service => the topic pushed to it, its dead-letter topic, and the ack deadline it must answer within
  consumed_topic            = { for name, s in local.push_subscriptions : s.push_service => s.topic }
  dead_letter_topic         = { for name, s in local.push_subscriptions : s.push_service => s.dead_letter.topic }
  push_ack_deadline_seconds = { for name, s in local.push_subscriptions : s.push_service => s.ack_deadline_seconds }

  bucket_name     = "${var.project}-${local.resources.bucket.name_suffix}"
  dataset         = local.resources.bigquery.dataset
  staging_dataset = local.resources.bigquery.staging_dataset

  # The wallets to copy: the operator's table, or an empty one created here (var.traders_table = null).
  traders_table_key = "traders"
  traders_table     = coalesce(var.traders_table, "${var.project}.${local.dataset}.${local.traders_table_key}")
  # The tables, their partitioning and clustering: generated from shared/core/tables.py, the one table
  # spec (`python -m shared.core.tables --write`; a test fails when the checked-in files are stale).
  tables = jsondecode(file("${path.module}/schemas/tables.json"))
  managed_tables = {
    for name, t in local.tables : name => t if name != local.traders_table_key || var.traders_table == null
  }

  pubsub_service_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Optional customer-managed keys (variables.tf, "Encryption"): the location part of each key given, for
  # the plan-time checks below. BigQuery's multi-regions take the key ring location of the same name
  # (US -> us), except EU, whose key rings live in "europe".
  kms_keys = {
    storage           = var.storage_kms_key_name
    bigquery          = var.bigquery_kms_key_name
    pubsub            = var.pubsub_kms_key_name
    secret            = var.secret_kms_key_name
    artifact_registry = var.artifact_registry_kms_key_name
  }
  kms_key_location      = { for use, key in local.kms_keys : use => split("/", key)[3] if key != null }
  bigquery_key_location = upper(var.bigquery_location) == "EU" ? "europe" : lower(var.bigquery_location)
  # Who encrypts with each key: grant it roles/cloudkms.cryptoKeyEncrypterDecrypter on the key first.
  cmek_service_agents = {
    storage           = "service-${data.google_project.this.number}@gs-project-accounts.iam.gserviceaccount.com"
    bigquery          = "bq-${data.google_project.this.number}@bigquery-encryption.iam.gserviceaccount.com"
    pubsub            = local.pubsub_service_agent
    secret            = "service-${data.google_project.this.number}@gcp-sa-secretmanager.iam.gserviceaccount.com"
    artifact_registry = "service-${data.google_project.this.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
  }

  image_repository = "${var.region}-docker.pkg.dev/${var.project}/${var.artifact_repository}"
  images = {
    for name in ["dispatcher", "fetcher", "loader"] : name => coalesce(lookup(var.images, name, null), "${local.image_repository}/${name}:${var.image_tag}")
  }

  # The key's limits hold across the whole fetcher fleet (design rule 10). Every instance gets the
  # key's whole windows as its ceiling (one instance never exceeds the key by itself) and the most
  # instances (FETCHER_MAX_INSTANCES): it paces itself adaptively from a floor of the key / that
  # number up to the whole key, by the API's rate-limit headers and 429s, so the running instances use
  # the whole key together whatever their number (shared/adapters/sources/share.py).
  dome_tier               = lookup(var.dome_tier_limits, var.dome_tier, { per_second = 0, per_10s = 0 })
  fetcher_rate_per_second = local.dome_tier.per_second
  fetcher_rate_per_10s    = local.dome_tier.per_10s
  # What each instance is owed when every instance runs: at least one request per window.
  fetcher_floor_per_second = floor(local.dome_tier.per_second / var.fetcher_max_instances)
  fetcher_floor_per_10s    = floor(local.dome_tier.per_10s / var.fetcher_max_instances)
  # With verify_api_counts the dispatcher asks Dome for counts (POST /verify) at a fixed share the size
  # of one more fetcher's floor; the fleet, pacing itself by the key's rate-limit headers, counts those
  # requests in the key's window and leaves them room.
  verify_api_counts      = var.verify_api_counts && var.trade_source == "dome"
  verify_rate_per_second = floor(local.dome_tier.per_second / (var.fetcher_max_instances + 1))
  verify_rate_per_10s    = floor(local.dome_tier.per_10s / (var.fetcher_max_instances + 1))
  # The same when the fleet pages the Polymarket Data API instead.
  fetcher_polymarket_rate_per_10s  = var.polymarket_rate_per_10s
  fetcher_polymarket_floor_per_10s = floor(var.polymarket_rate_per_10s / var.fetcher_max_instances)
  # Little's law: one instance alone may use the whole key, so it keeps (the key's sustained
  # requests/s x seconds per request) wallets in flight; more would only queue on its limiter.
  fetcher_sustained_rps = var.trade_source == "dome" ? min(local.fetcher_rate_per_second, local.fetcher_rate_per_10s / 10) : local.fetcher_polymarket_rate_per_10s / 10
  fetcher_concurrency   = max(1, min(var.fetcher_max_concurrency, ceil(local.fetcher_sustained_rps * var.dome_request_seconds)))
  # Dispatch tops up to what the fleet can drain: 4 wallets per fetcher slot, so a backlog never
  # waits long in Pub/Sub (where each 429 from a saturated fleet costs a delivery attempt).
  max_in_flight = coalesce(var.max_in_flight, 4 * var.fetcher_max_instances * local.fetcher_concurrency)

  common_env = {
    GCP_PROJECT        = var.project
    BQ_DATASET         = local.dataset
    BQ_STAGING_DATASET = local.staging_dataset
    GCS_BUCKET         = local.bucket_name
    BQ_LOCATION        = var.bigquery_location
    LOG_LEVEL          = var.log_level
  }
  # Who may call which route (docs/design.md, "Who may call"): each service checks the `email` of the
  # caller's ID token against these, per route; the push identities are the subscriptions' own.
  push_invoker_emails = { for name, s in local.push_subscriptions : s.push_service => module.push[name].invoker_email... }
  dispatcher_env = merge({
    TRADERS_TABLE = local.traders_table
    # The tasks it sends name the source the fetchers page (a fetcher dead-letters a task for another
    # source), and /verify proves checkpoints of that source: the same variable as theirs.
    TRADE_SOURCE             = var.trade_source
    LEASE_SECONDS            = var.lease_seconds
    MAX_IN_FLIGHT            = local.max_in_flight
    SYNC_DAILY               = var.sync_daily
    SYNC_HOUR_UTC            = var.sync_hour_utc
    SYNC_LOOKBACK_SECONDS    = var.sync_lookback_seconds
    ALLOWED_SCHEDULER_EMAILS = google_service_account.scheduler.email
    ALLOWED_OPERATOR_EMAILS  = google_service_account.operator.email
    }, {
    # POST /verify's counts (verify_api_counts): a fixed share of the key's limits, one more fetcher's floor.
    for name, value in {
      DOME_API_BASE_URL    = var.dome_api_base_url
      DOME_TIER            = "custom"
      DOME_RATE_PER_SECOND = local.verify_rate_per_second
      DOME_RATE_PER_10S    = local.verify_rate_per_10s
    } : name => value if local.verify_api_counts
  })
  fetcher_env = {
    TRADE_SOURCE      = var.trade_source
    DOME_API_BASE_URL = var.dome_api_base_url
    # "custom": the key's two windows from dome_tier_limits (which may hold tiers of your own).
    DOME_TIER            = "custom"
    DOME_RATE_PER_SECOND = local.fetcher_rate_per_second
    DOME_RATE_PER_10S    = local.fetcher_rate_per_10s
    # Used when TRADE_SOURCE=polymarket: the /trades limit, shared the same way.
    POLYMARKET_RATE_PER_10S = local.fetcher_polymarket_rate_per_10s
    # The fleet's size: each instance's floor is the key / this, and it adapts above it.
    FETCHER_MAX_INSTANCES = var.fetcher_max_instances
    FETCH_BUDGET_SECONDS  = var.fetch_budget_seconds
    FETCH_MAX_PAGES       = var.fetch_max_pages
    ALLOWED_PUSH_EMAILS   = join(",", local.push_invoker_emails["fetcher"])
    # GET /status. The operator account holds run.invoker on the dispatcher only (operators.tf): to reach
    # the fetcher's /status too, it needs that grant here as well.
    ALLOWED_OPERATOR_EMAILS = google_service_account.operator.email
  }
  loader_env = {
    LOADER_FLUSH_FILES   = var.loader_flush_files
    LOADER_FLUSH_SECONDS = var.loader_flush_seconds
    ALLOWED_PUSH_EMAILS  = join(",", local.push_invoker_emails["loader"])
  }

  service_uris = {
    dispatcher = module.dispatcher.uri
    fetcher    = module.fetcher.uri
    loader     = module.loader.uri
  }
  service_audiences = {
    dispatcher = module.dispatcher.audience
    fetcher    = module.fetcher.audience
    loader     = module.loader.audience
  }

  apis = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

data "google_project" "this" {
  project_id = var.project
}

resource "google_project_service" "this" {
  for_each = local.apis

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# Makes sure service-<number>@gcp-sa-pubsub exists before it is granted anything.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.this]
}

# Plan-time checks of the properties that span several variables (fails `terraform plan`).
resource "terraform_data" "invariants" {
  lifecycle {
    precondition {
      condition     = contains(keys(var.dome_tier_limits), var.dome_tier)
      error_message = "dome_tier \"${var.dome_tier}\" is not a key of dome_tier_limits."
    }
    precondition {
      condition     = local.fetcher_floor_per_second >= 1 && local.fetcher_floor_per_10s >= 1 && (!local.verify_api_counts || (local.verify_rate_per_second >= 1 && local.verify_rate_per_10s >= 1))
      error_message = "fetcher_max_instances = ${var.fetcher_max_instances} leaves each fetcher less than one request per window of the ${var.dome_tier} tier; use at most ${floor(min(local.dome_tier.per_second, local.dome_tier.per_10s)) - (local.verify_api_counts ? 1 : 0)} instances${local.verify_api_counts ? " (verify_api_counts takes one share)" : ""}."
    }
    precondition {
      condition     = var.trade_source != "polymarket" || local.fetcher_polymarket_floor_per_10s >= 1
      error_message = "fetcher_max_instances = ${var.fetcher_max_instances} leaves each fetcher less than one Polymarket request per 10 s; use at most ${var.polymarket_rate_per_10s} instances."
    }
    precondition {
      condition     = local.fetcher_rate_per_second <= local.dome_tier.per_second && local.fetcher_rate_per_10s <= local.dome_tier.per_10s
      error_message = "one fetcher instance could exceed the ${var.dome_tier} tier's limits by itself."
    }
    precondition {
      condition     = var.fetch_budget_seconds + var.ack_margin_seconds <= local.push_ack_deadline_seconds["fetcher"]
      error_message = "fetch_budget_seconds + ack_margin_seconds must fit the fetcher's push ack deadline (${local.push_ack_deadline_seconds["fetcher"]} s in resources.yaml)."
    }
    precondition {
      condition     = var.loader_flush_seconds + var.ack_margin_seconds <= local.push_ack_deadline_seconds["loader"]
      error_message = "loader_flush_seconds + ack_margin_seconds must fit the loader's push ack deadline (${local.push_ack_deadline_seconds["loader"]} s in resources.yaml)."
    }
    precondition {
      condition     = var.loader_concurrency >= var.loader_flush_files
      error_message = "loader_concurrency must be at least loader_flush_files: a batch is made of pushes held open until it commits."
    }
    precondition {
      condition     = length(setsubtract(keys(local.resources.topics), concat(values(local.consumed_topic), values(local.dead_letter_topic)))) == 0
      error_message = "resources.yaml declares a topic that no push subscription uses as its topic or dead-letter topic; terraform would not create it."
    }
    precondition {
      condition     = length(local.push_subscriptions) + length(local.pull_subscription_of_topic) == length(local.resources.subscriptions)
      error_message = "resources.yaml declares a subscription that is neither a push subscription nor the one pull subscription of a dead-letter topic."
    }
    # A CMEK must live where the data does, or the create call fails half-way through an apply.
    precondition {
      condition     = lookup(local.kms_key_location, "storage", var.region) == var.region
      error_message = "storage_kms_key_name must be a key in ${var.region} (the bucket's location), not in ${lookup(local.kms_key_location, "storage", "-")}."
    }
    precondition {
      condition     = lookup(local.kms_key_location, "artifact_registry", var.region) == var.region
      error_message = "artifact_registry_kms_key_name must be a key in ${var.region} (the repository's location), not in ${lookup(local.kms_key_location, "artifact_registry", "-")}."
    }
    precondition {
      condition     = lookup(local.kms_key_location, "bigquery", local.bigquery_key_location) == local.bigquery_key_location
      error_message = "bigquery_kms_key_name must be a key in ${local.bigquery_key_location} (matching bigquery_location ${var.bigquery_location}), not in ${lookup(local.kms_key_location, "bigquery", "-")}."
    }
    # Every push subscription gets a backlog-age alert (monitoring.tf), so its service needs a threshold.
    precondition {
      condition     = length(setsubtract(keys(local.consumed_topic), keys(var.backlog_age_alert_seconds))) == 0
      error_message = "backlog_age_alert_seconds needs a threshold for every push service of resources.yaml (${join(", ", keys(local.consumed_topic))})."
    }
  }
}

# --- Pub/Sub: one module per push subscription of resources.yaml (topic, DLQ topic + pull sub, invoker) ---

module "push" {
  source   = "./modules/push_subscription"
  for_each = local.push_subscriptions

  project                          = var.project
  topic_name                       = each.value.topic
  subscription_name                = each.key
  push_endpoint                    = "${local.service_uris[each.value.push_service]}${each.value.push_path}"
  oidc_audience                    = local.service_audiences[each.value.push_service]
  ack_deadline_seconds             = each.value.ack_deadline_seconds
  minimum_backoff                  = each.value.retry_policy.minimum_backoff
  maximum_backoff                  = each.value.retry_policy.maximum_backoff
  max_delivery_attempts            = each.value.dead_letter.max_delivery_attempts
  dead_letter_topic_name           = each.value.dead_letter.topic
  dead_letter_topic_retention      = "${var.dead_letter_topic_retention_days * 86400}s"
  dead_letter_subscription_name    = local.dead_letter_pull[each.key]
  dead_letter_ack_deadline_seconds = local.resources.subscriptions[local.dead_letter_pull[each.key]].ack_deadline_seconds
  dead_letter_message_retention    = local.resources.subscriptions[local.dead_letter_pull[each.key]].message_retention
  pubsub_service_agent_email       = local.pubsub_service_agent
  kms_key_name                     = var.pubsub_kms_key_name
  labels                           = var.labels

  depends_on = [google_project_service.this, google_project_service_identity.pubsub]
}

# --- Cloud Run: the three services, each with its own service account ----------------------------

module "dispatcher" {
  source = "./modules/cloud_run_service"

  project        = var.project
  project_number = data.google_project.this.number
  region         = var.region
  name           = "dispatcher"
  image          = local.images["dispatcher"]
  # One instance: two dispatches at once would both lease the same wallets with DML on `leases`.
  max_instances   = 1
  concurrency     = 8
  timeout_seconds = var.dispatch_attempt_deadline_seconds
  # Internal by default: the scheduler, and operators inside the project's network; see var.dispatcher_ingress.
  ingress = var.dispatcher_ingress
  env     = merge(local.common_env, local.dispatcher_env)
  # The key for POST /verify's counts, only with verify_api_counts; read off the grant, as the fetcher's,
  # so the revision is created only once the dispatcher may read it.
  secret_env = {
    for name, ref in {
      DOME_API_KEY = local.verify_api_counts ? google_secret_manager_secret_iam_member.dispatcher_reads_api_key["dispatcher"].secret_id : ""
    } : name => { secret = reverse(split("/", ref))[0], version = "latest" } if local.verify_api_counts
  }
  # The operator service account's run.invoker is in operators.tf; operators themselves impersonate it.
  invokers            = { scheduler = "serviceAccount:${google_service_account.scheduler.email}" }
  deletion_protection = var.deletion_protection
  labels              = var.labels

  depends_on = [google_project_service.this]
}

module "fetcher" {
  source = "./modules/cloud_run_service"

  project         = var.project
  project_number  = data.google_project.this.number
  region          = var.region
  name            = "fetcher"
  image           = local.images["fetcher"]
  max_instances   = var.fetcher_max_instances
  concurrency     = local.fetcher_concurrency
  timeout_seconds = local.push_ack_deadline_seconds["fetcher"]
  # Reached only by Pub/Sub push of this project (internal traffic), with an OIDC token.
  ingress = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  env     = merge(local.common_env, local.fetcher_env)
  # The secret's short name is read off the grant (projects/<p>/secrets/<name>), so the revision is
  # created only once the fetcher may read the key. "latest" resolves when an instance starts.
  secret_env = {
    for name, ref in { DOME_API_KEY = google_secret_manager_secret_iam_member.fetcher_reads_api_key.secret_id } :
    name => { secret = reverse(split("/", ref))[0], version = "latest" } if var.trade_source == "dome"
  }
  invokers = {
    for name, s in local.push_subscriptions : name => module.push[name].invoker_member if s.push_service == "fetcher"
  }
  deletion_protection = var.deletion_protection
  labels              = var.labels

  depends_on = [google_project_service.this]
}

module "loader" {
  source = "./modules/cloud_run_service"

  project        = var.project
  project_number = data.google_project.this.number
  region         = var.region
  name           = "loader"
  image          = local.images["loader"]
  memory         = "1Gi"
  # One writer per table: BigQuery runs 2 (+20 queued) mutating DML per table and cancels a transaction
  # that races another on the same table (docs/design.md, "Facts"), so one instance,
  # which serialises its batches; its concurrency lets one batch gather many pushes.
  max_instances   = 1
  concurrency     = var.loader_concurrency
  timeout_seconds = local.push_ack_deadline_seconds["loader"]
  ingress         = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  env             = merge(local.common_env, local.loader_env)
  invokers = {
    for name, s in local.push_subscriptions : name => module.push[name].invoker_member if s.push_service == "loader"
  }
  deletion_protection = var.deletion_protection
  labels              = var.labels

  depends_on = [google_project_service.this]
}

# --- Images and the API key ---------------------------------------------------------------------

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:CMEK is opt-in through var.artifact_registry_kms_key_name (null keeps Google-managed encryption, the default this check sees); the images hold code and its dependencies, no trade data and no secret.
  project       = var.project
  location      = var.region
  repository_id = var.artifact_repository
  format        = "DOCKER"
  description   = "Images of the dispatcher, fetcher and loader (built from services/<name>/Dockerfile)."
  kms_key_name  = var.artifact_registry_kms_key_name
  labels        = var.labels

  # A tag, once pushed, is one build for good: var.image_tag then names exactly what runs, and a
  # rebuild must take a new tag (a git sha) instead of silently replacing the image under a revision.
  docker_config {
    immutable_tags = true
  }

  depends_on = [google_project_service.this]
}

# The secret only: its version (the key itself) is added by the operator, never stored in state.
resource "google_secret_manager_secret" "dome_api_key" {
  project   = var.project
  secret_id = var.dome_api_key_secret_id
  labels    = var.labels

  replication {
    auto {
      dynamic "customer_managed_encryption" {
        for_each = var.secret_kms_key_name == null ? [] : [var.secret_kms_key_name]
        content {
          kms_key_name = customer_managed_encryption.value
        }
      }
    }
  }

  depends_on = [google_project_service.this]
}
