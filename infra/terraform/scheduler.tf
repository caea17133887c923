# Cloud Scheduler's own identity: may invoke the dispatcher and nothing else.
resource "google_service_account" "scheduler" {
  project      = var.project
  account_id   = "dispatch-scheduler"
  display_name = "Cloud Scheduler caller of dispatcher /dispatch"
}

resource "google_cloud_scheduler_job" "dispatch" {
  project   = var.project
  region    = var.region
  name      = "dispatch"
  schedule  = var.dispatch_schedule
  time_zone = var.dispatch_time_zone
  # Dispatch publishes and leases at most MAX_IN_FLIGHT wallets and returns; a call that runs past the
  # deadline is retried, which is harmless because leased wallets are not dispatched twice.
  attempt_deadline = "${var.dispatch_attempt_deadline_seconds}s"

  retry_config {
    retry_count          = var.dispatch_retry_count
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = "${module.dispatcher.uri}/dispatch"
    body        = base64encode(jsonencode({ mode = var.dispatch_mode }))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = module.dispatcher.audience
    }
  }

  depends_on = [google_project_service.this]
}
