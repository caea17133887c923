# Resource NAMES are not variables: they come from infra/resources.yaml (see locals in main.tf), the
# same file the local emulator bootstrap reads. Constraints that involve two variables (the fleet's
# rate against the tier, budgets against ack deadlines) are preconditions in main.tf, because
# cross-variable validation needs Terraform 1.9.

# --- Where ---------------------------------------------------------------------------------------

variable "project" {
  type        = string
  description = "Google Cloud project id that hosts everything (the bucket is named \"<project>-<bucket.name_suffix>\")."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "Region of the Cloud Run services, the Scheduler job, the bucket and the Artifact Registry repository."
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "bigquery_location" {
  type        = string
  description = "Location of both BigQuery datasets. Load jobs need the bucket in it: a multi-region (US, EU) contains var.region's bucket, a single region must equal var.region."
  default     = "US"

  validation {
    condition     = length(var.bigquery_location) > 0
    error_message = "bigquery_location must not be empty."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels."
  default     = { app = "wallet-backfill" }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the Cloud Run services and BigQuery tables from `terraform destroy` (set false only for throw-away projects)."
  default     = true
}

# --- Images --------------------------------------------------------------------------------------

variable "artifact_repository" {
  type        = string
  description = "Artifact Registry docker repository (created here) that holds the three service images."
  default     = "backfill"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.artifact_repository))
    error_message = "artifact_repository must be lowercase letters, digits and hyphens."
  }
}

# Required: a deployment names the build it runs. The repository's tags are immutable, so a tag is
# one build for good; deploy by digest with var.images to pin even that.
variable "image_tag" {
  type        = string
  description = "Tag of the images built from services/<name>/Dockerfile (a git sha, say), used where var.images names none. Required; never \"latest\"."

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid docker tag."
  }

  validation {
    condition     = lower(var.image_tag) != "latest"
    error_message = "image_tag must name one build (a git sha or a release), not latest: a moving tag makes a deployment unrepeatable."
  }
}

variable "images" {
  type = object({
    dispatcher = optional(string)
    fetcher    = optional(string)
    loader     = optional(string)
  })
  description = "Full image references per service; an unset one defaults to <region>-docker.pkg.dev/<project>/<artifact_repository>/<service>:<image_tag>."
  default     = {}

  validation {
    condition     = alltrue([for image in values(var.images) : image == null || can(regex("^[^\\s]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", image))])
    error_message = "each image must be a full reference ending in :<tag> or @sha256:<digest>."
  }

  validation {
    condition     = alltrue([for image in values(var.images) : image == null ? true : !endswith(lower(image), ":latest")])
    error_message = "an image must not be :latest; give a tag of one build or @sha256:<digest>."
  }
}

# --- The source of wallets and of trades -----------------------------------------------------------

variable "traders_table" {
  type        = string
  description = "Fully qualified project.dataset.table the dispatcher reads wallets from (column wallet_address). Null: terraform creates an empty <project>.<dataset>.traders to fill."
  default     = null

  validation {
    condition     = var.traders_table == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]\\.[A-Za-z0-9_]+\\.[A-Za-z0-9_-]+$", var.traders_table))
    error_message = "traders_table must be project.dataset.table, for example my-project.polymarket.traders."
  }
}

variable "trade_source" {
  type        = string
  description = "TRADE_SOURCE of the fetcher: dome (the Dome API, needs the key secret) or polymarket (the public Data API)."
  default     = "dome"

  validation {
    condition     = contains(["dome", "polymarket"], var.trade_source)
    error_message = "trade_source must be dome or polymarket."
  }
}

variable "verify_api_counts" {
  type        = bool
  description = "Let the dispatcher's POST /verify compare each complete wallet with Dome's own count (pagination.total of a limit=1 request, one request per wallet): the dispatcher then reads the key and takes one share of the key's limits, so each fetcher's share is floor(tier / (fetcher_max_instances + 1)). Dome only: the Data API has no total. Off: /verify compares checkpoints with the warehouse and reports the API count as n/a."
  default     = false
}

variable "dome_api_base_url" {
  type        = string
  description = "DOME_API_BASE_URL of the fetcher."
  default     = "https://api.domeapi.io/v1"

  validation {
    condition     = can(regex("^https://", var.dome_api_base_url))
    error_message = "dome_api_base_url must be an https URL."
  }
}

variable "dome_api_key_secret_id" {
  type        = string
  description = "Secret Manager secret (created here, without a version) whose latest version the fetcher reads as DOME_API_KEY."
  default     = "dome-api-key"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.dome_api_key_secret_id))
    error_message = "dome_api_key_secret_id must be letters, digits, hyphens and underscores."
  }
}

# --- The API tier and the fetcher fleet ------------------------------------------------------------

variable "dome_tier" {
  type        = string
  description = "Which entry of dome_tier_limits the API key has (free, dev, pro, or one you add)."
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z0-9_-]+$", var.dome_tier))
    error_message = "dome_tier must be a key of dome_tier_limits (lowercase)."
  }
}

variable "dome_tier_limits" {
  type = map(object({
    per_second = number
    per_10s    = number
  }))
  description = "Requests the key may send per 1 s and per 10 s window, both enforced (Dome's published tiers, docs/design.md). The whole fetcher fleet shares them."
  default = {
    free = { per_second = 10, per_10s = 100 }
    dev  = { per_second = 100, per_10s = 500 }
    pro  = { per_second = 300, per_10s = 3000 }
  }

  validation {
    condition     = alltrue([for tier in values(var.dome_tier_limits) : tier.per_second >= 1 && tier.per_10s >= 1 && floor(tier.per_second) == tier.per_second && floor(tier.per_10s) == tier.per_10s])
    error_message = "every tier needs whole, positive per_second and per_10s limits."
  }
}

variable "polymarket_rate_per_10s" {
  type        = number
  description = "Requests per 10 s the Polymarket Data API allows on /trades (published: 200), shared by the fetcher fleet like a Dome tier when trade_source = polymarket."
  default     = 200

  validation {
    condition     = var.polymarket_rate_per_10s >= 1 && floor(var.polymarket_rate_per_10s) == var.polymarket_rate_per_10s
    error_message = "polymarket_rate_per_10s must be a whole number >= 1."
  }
}

variable "fetcher_max_instances" {
  type        = number
  description = "Most fetcher instances (FETCHER_MAX_INSTANCES). Each is owed tier / this and adapts up to the whole key by the API's answers, so the instances running use the whole key together; must not exceed the tier's per-second limit (checked at plan)."
  default     = 10

  validation {
    condition     = var.fetcher_max_instances >= 1 && var.fetcher_max_instances <= 1000 && floor(var.fetcher_max_instances) == var.fetcher_max_instances
    error_message = "fetcher_max_instances must be a whole number from 1 to 1000."
  }
}

variable "dome_request_seconds" {
  type        = number
  description = "Typical seconds one API page takes (latency plus parsing). Sizes fetcher concurrency by Little's law: wallets per instance = the key's sustained rate x this (one instance may use the whole key)."
  default     = 1

  validation {
    condition     = var.dome_request_seconds > 0 && var.dome_request_seconds <= 30
    error_message = "dome_request_seconds must be in (0, 30]."
  }
}

variable "fetcher_max_concurrency" {
  type        = number
  description = "Upper bound on wallets one fetcher instance pages at once, whatever the tier allows (memory: one page per wallet)."
  default     = 32

  validation {
    condition     = var.fetcher_max_concurrency >= 1 && var.fetcher_max_concurrency <= 1000 && floor(var.fetcher_max_concurrency) == var.fetcher_max_concurrency
    error_message = "fetcher_max_concurrency must be a whole number from 1 to 1000 (Cloud Run's cap)."
  }
}

variable "fetch_budget_seconds" {
  type        = number
  description = "FETCH_BUDGET_SECONDS: the fetcher stops a part after this long and publishes a continuation; must stay ack_margin_seconds inside the wallets push ack deadline (checked at plan)."
  default     = 240

  validation {
    condition     = var.fetch_budget_seconds >= 10 && var.fetch_budget_seconds <= 570
    error_message = "fetch_budget_seconds must be 10-570 (Pub/Sub's 600 s push cap minus a margin)."
  }
}

variable "fetch_max_pages" {
  type        = number
  description = "FETCH_MAX_PAGES: pages per part file."
  default     = 100

  validation {
    condition     = var.fetch_max_pages >= 1 && floor(var.fetch_max_pages) == var.fetch_max_pages
    error_message = "fetch_max_pages must be a whole number >= 1."
  }
}

variable "ack_margin_seconds" {
  type        = number
  description = "Headroom between a service's work budget and its subscription's ack deadline (last page, part upload, publishes, MERGE)."
  default     = 30

  validation {
    condition     = var.ack_margin_seconds >= 10
    error_message = "ack_margin_seconds must be at least 10."
  }
}

# --- Loader --------------------------------------------------------------------------------------

variable "loader_flush_files" {
  type        = number
  description = "LOADER_FLUSH_FILES: part files per load batch (one load job + one MERGE transaction)."
  default     = 50

  validation {
    condition     = var.loader_flush_files >= 1 && var.loader_flush_files <= 10000 && floor(var.loader_flush_files) == var.loader_flush_files
    error_message = "loader_flush_files must be a whole number from 1 to 10000 (a load job takes at most 10,000 URIs)."
  }
}

variable "loader_flush_seconds" {
  type        = number
  description = "LOADER_FLUSH_SECONDS: longest wait to fill a batch; plus ack_margin_seconds must fit the files push ack deadline (checked at plan)."
  default     = 20

  validation {
    condition     = var.loader_flush_seconds > 0 && var.loader_flush_seconds <= 540
    error_message = "loader_flush_seconds must be in (0, 540]."
  }
}

variable "loader_concurrency" {
  type        = number
  description = "Pushes the single loader instance holds at once; at least loader_flush_files, since a batch is built from concurrent pushes that are answered only after it commits."
  default     = 100

  validation {
    condition     = var.loader_concurrency >= 1 && var.loader_concurrency <= 1000 && floor(var.loader_concurrency) == var.loader_concurrency
    error_message = "loader_concurrency must be a whole number from 1 to 1000."
  }
}

# --- Dispatcher and its schedule -------------------------------------------------------------------

variable "lease_seconds" {
  type        = number
  description = "LEASE_SECONDS: a dispatched wallet is not dispatched again for this long."
  default     = 21600

  validation {
    condition     = var.lease_seconds >= 60 && floor(var.lease_seconds) == var.lease_seconds
    error_message = "lease_seconds must be a whole number >= 60."
  }
}

variable "max_in_flight" {
  type        = number
  description = "MAX_IN_FLIGHT: wallets dispatched and not finished; one dispatch tops up to this. Null: 4 x fetcher_max_instances x fetcher concurrency (what the fleet drains)."
  default     = null

  validation {
    condition     = var.max_in_flight == null || (try(var.max_in_flight >= 1 && floor(var.max_in_flight) == var.max_in_flight, false))
    error_message = "max_in_flight must be null or a whole number >= 1."
  }
}

variable "dispatch_schedule" {
  type        = string
  description = "Cron schedule of the Scheduler job that POSTs <dispatcher>/dispatch."
  default     = "*/30 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.dispatch_schedule))) == 5
    error_message = "dispatch_schedule must be a five-field cron expression."
  }
}

variable "dispatch_time_zone" {
  type        = string
  description = "Time zone of dispatch_schedule."
  default     = "Etc/UTC"

  validation {
    condition     = length(var.dispatch_time_zone) > 0
    error_message = "dispatch_time_zone must not be empty."
  }
}

variable "dispatch_mode" {
  type        = string
  description = "Body of the scheduled call: scheduled (new and unfinished wallets, and once a day from sync_hour_utc the daily sync of complete ones), backfill (new and unfinished wallets only) or sync (also every complete wallet, at every call)."
  default     = "scheduled"

  validation {
    condition     = contains(["scheduled", "backfill", "sync"], var.dispatch_mode)
    error_message = "dispatch_mode must be scheduled, backfill or sync."
  }
}

variable "sync_daily" {
  type        = bool
  description = "SYNC_DAILY: scheduled dispatches sync every complete wallet once a day (from its newest trade minus sync_lookback_seconds), spread over the calls after sync_hour_utc and bounded by max_in_flight."
  default     = true
}

variable "sync_hour_utc" {
  type        = number
  description = "SYNC_HOUR_UTC: the hour (0-23, UTC) from which complete wallets are due for the day's sync."
  default     = 2

  validation {
    condition     = var.sync_hour_utc >= 0 && var.sync_hour_utc <= 23 && floor(var.sync_hour_utc) == var.sync_hour_utc
    error_message = "sync_hour_utc must be a whole hour from 0 to 23."
  }
}

variable "sync_lookback_seconds" {
  type        = number
  description = "SYNC_LOOKBACK_SECONDS: a sync asks again from the newest stored trade minus this, so trades the API indexes late are caught (MERGE makes the overlap free)."
  default     = 86400

  validation {
    condition     = var.sync_lookback_seconds >= 0
    error_message = "sync_lookback_seconds must not be negative."
  }
}

variable "dispatch_attempt_deadline_seconds" {
  type        = number
  description = "Scheduler attempt deadline (HTTP targets: 15-1800 s). Dispatch only publishes and leases, so it is quick; also the dispatcher's request timeout."
  default     = 320

  validation {
    condition     = var.dispatch_attempt_deadline_seconds >= 15 && var.dispatch_attempt_deadline_seconds <= 1800
    error_message = "dispatch_attempt_deadline_seconds must be 15-1800."
  }
}

variable "dispatch_retry_count" {
  type        = number
  description = "Scheduler retries of a failed dispatch (0-5); safe because dispatch is idempotent (leases)."
  default     = 2

  validation {
    condition     = var.dispatch_retry_count >= 0 && var.dispatch_retry_count <= 5 && floor(var.dispatch_retry_count) == var.dispatch_retry_count
    error_message = "dispatch_retry_count must be a whole number from 0 to 5."
  }
}

variable "dispatcher_ingress" {
  type        = string
  description = "Ingress of the dispatcher. INTERNAL_ONLY (the default) admits Cloud Scheduler and callers inside the project's VPC networks: operators call /status and /dead-letters/replay from there (a VM, Cloud Workstations, a VPN) with an ID token of the operator service account (operators.tf), and run a dispatch with `gcloud scheduler jobs run dispatch`. INGRESS_TRAFFIC_ALL lets them call from anywhere; Cloud Run IAM and the dispatcher's own per-route check (ALLOWED_*_EMAILS) still apply."
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY"], var.dispatcher_ingress)
    error_message = "dispatcher_ingress must be INGRESS_TRAFFIC_ALL or INGRESS_TRAFFIC_INTERNAL_ONLY."
  }
}

variable "operator_members" {
  type        = list(string)
  description = "Principals (group:..., user:...) that may impersonate the operator service account (roles/iam.serviceAccountTokenCreator, operators.tf) to call the dispatcher's GET /status and POST /dead-letters/replay; ID tokens carry an email, never group membership, so the dispatcher admits that account, not these principals. Never allUsers."
  default     = []

  validation {
    condition     = alltrue([for m in var.operator_members : can(regex("^(user|group|serviceAccount|domain):", m))])
    error_message = "operator_members must be IAM principals such as user:me@example.com; allUsers is not allowed."
  }
}

# --- Retention and logs ----------------------------------------------------------------------------

variable "dead_letter_topic_retention_days" {
  type        = number
  description = "Days the dead-letter topics keep messages, so a dead-letter subscription can be seeked back past its own 7-day retention."
  default     = 31

  validation {
    condition     = var.dead_letter_topic_retention_days >= 1 && var.dead_letter_topic_retention_days <= 31 && floor(var.dead_letter_topic_retention_days) == var.dead_letter_topic_retention_days
    error_message = "dead_letter_topic_retention_days must be a whole number from 1 to 31 (Pub/Sub's cap)."
  }
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of the three services."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

# --- Encryption: optional customer-managed keys (CMEK) -----------------------------------------------
# Null (the default) keeps Google-managed encryption and leaves each resource exactly as without the
# variable. A key is the operator's: its service agent (output cmek_service_agents) needs
# roles/cloudkms.cryptoKeyEncrypterDecrypter on it BEFORE the apply that uses it. Choose the keys before
# the first apply: a key added later protects only what is written after it (existing objects, tables
# and secret versions keep their encryption; moving a BigQuery table to a key takes a copy job), and the
# Artifact Registry repository cannot change its key without being replaced.

variable "storage_kms_key_name" {
  type        = string
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) that encrypts new part files by default (the bucket's default_kms_key_name); in var.region. Null: Google-managed."
  default     = null

  validation {
    condition     = var.storage_kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.storage_kms_key_name))
    error_message = "storage_kms_key_name must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> or null."
  }
}

variable "bigquery_kms_key_name" {
  type        = string
  description = "Cloud KMS key for both datasets' default encryption and the managed tables; in the location matching bigquery_location (US -> us, EU -> europe, a region -> that region). Null: Google-managed."
  default     = null

  validation {
    condition     = var.bigquery_kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.bigquery_kms_key_name))
    error_message = "bigquery_kms_key_name must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> or null."
  }
}

variable "pubsub_kms_key_name" {
  type        = string
  description = "Cloud KMS key that encrypts the messages of the four topics (wallets, files and their dead-letter topics). Null: Google-managed."
  default     = null

  validation {
    condition     = var.pubsub_kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.pubsub_kms_key_name))
    error_message = "pubsub_kms_key_name must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> or null."
  }
}

variable "secret_kms_key_name" {
  type        = string
  description = "Cloud KMS key that encrypts the API key secret's versions (automatic replication: the key must be in location global). Null: Google-managed."
  default     = null

  validation {
    condition     = var.secret_kms_key_name == null || can(regex("^projects/[^/]+/locations/global/keyRings/[^/]+/cryptoKeys/[^/]+$", var.secret_kms_key_name))
    error_message = "secret_kms_key_name must be projects/<p>/locations/global/keyRings/<r>/cryptoKeys/<k> (a secret with automatic replication takes only a global key) or null."
  }
}

variable "artifact_registry_kms_key_name" {
  type        = string
  description = "Cloud KMS key that encrypts the image repository; in var.region. Set it before the repository exists: changing it replaces the repository. Null: Google-managed."
  default     = null

  validation {
    condition     = var.artifact_registry_kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.artifact_registry_kms_key_name))
    error_message = "artifact_registry_kms_key_name must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> or null."
  }
}

# --- Monitoring (monitoring.tf) -------------------------------------------------------------------

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channels (projects/<p>/notificationChannels/<id>) every alert policy notifies. Empty: alerts open incidents in the console only."
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels must be ids like projects/my-project/notificationChannels/1234567890."
  }
}

variable "backlog_age_alert_seconds" {
  type        = map(number)
  description = "Per push service (fetcher, loader): alert when the oldest unacked message of the subscription that pushes to it is older than this for 5 minutes. Defaults: fetcher 3600 (a healthy backlog waits minutes; five failing deliveries with back-off take under half an hour), loader 1800 (batches flush every loader_flush_seconds)."
  default     = { fetcher = 3600, loader = 1800 }

  validation {
    condition     = alltrue([for seconds in values(var.backlog_age_alert_seconds) : seconds >= 300 && seconds <= 604800 && floor(seconds) == seconds])
    error_message = "backlog_age_alert_seconds values must be whole seconds from 300 (5 minutes) to 604800 (Pub/Sub's 7-day retention)."
  }
}

variable "fetcher_5xx_ratio_threshold" {
  type        = number
  description = "Alert when more than this fraction of the fetcher's responses are 5xx for 10 minutes. Some 503s are normal (a transient failure is answered 503 so Pub/Sub backs off); a sustained share means the API or a dependency is failing."
  default     = 0.2

  validation {
    condition     = var.fetcher_5xx_ratio_threshold > 0 && var.fetcher_5xx_ratio_threshold < 1
    error_message = "fetcher_5xx_ratio_threshold must be a fraction strictly between 0 and 1."
  }
}
