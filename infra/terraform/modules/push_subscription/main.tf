locals {
  # Each push subscription has its own invoker identity, granted run.invoker on its target only.
  invoker_account_id   = "${substr(var.subscription_name, 0, 21)}-invoker"
  pubsub_service_agent = "serviceAccount:${var.pubsub_service_agent_email}"
}

resource "google_pubsub_topic" "this" {
  #checkov:skip=CKV_GCP_83:CMEK is opt-in through the root's var.pubsub_kms_key_name (null keeps Google-managed encryption, the default this check sees); messages are wallet addresses and part-file pointers, public on-chain data.
  project      = var.project
  name         = var.topic_name
  kms_key_name = var.kms_key_name
  labels       = var.labels
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:CMEK is opt-in through the root's var.pubsub_kms_key_name (null keeps Google-managed encryption, the default this check sees); dead letters are the same public messages with an error text.
  project                    = var.project
  name                       = var.dead_letter_topic_name
  message_retention_duration = var.dead_letter_topic_retention
  kms_key_name               = var.kms_key_name
  labels                     = var.labels
}

resource "google_service_account" "invoker" {
  project      = var.project
  account_id   = local.invoker_account_id
  display_name = "Pub/Sub push identity of ${var.subscription_name}"
}

resource "google_pubsub_subscription" "push" {
  project = var.project
  name    = var.subscription_name
  topic   = google_pubsub_topic.this.id
  labels  = var.labels

  # For push this is also the request timeout: the receiver's budget must fit inside it.
  ack_deadline_seconds = var.ack_deadline_seconds

  push_config {
    push_endpoint = var.push_endpoint
    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = var.oidc_audience
    }
  }

  # Without a retry policy a nack is redelivered at once; back off instead (429s, a busy loader).
  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never expire for inactivity (the default deletes an idle subscription after 31 days).
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
    google_service_account_iam_member.agent_mints_invoker_tokens,
  ]
}

resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project
  name                       = var.dead_letter_subscription_name
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = var.dead_letter_ack_deadline_seconds
  message_retention_duration = var.dead_letter_message_retention
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it publishes to the dead-letter topic and
# acknowledges on the source subscription (https://cloud.google.com/pubsub/docs/handling-failures).
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  project = var.project
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "agent_acks_source" {
  project      = var.project
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Projects created before 2021-04-08 need the agent to hold token creator to mint push OIDC tokens;
# granted on this invoker only, so it costs nothing elsewhere.
resource "google_service_account_iam_member" "agent_mints_invoker_tokens" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}
