locals {
  # Known at plan time, so the audience exists on the first apply (no second pass to feed the URL back).
  # Cloud Run accepts ID tokens for any of its URLs; push subscriptions and Scheduler send this one.
  audience     = "https://${var.name}-${var.project_number}.${var.region}.run.app"
  identity_env = { OIDC_AUDIENCE = local.audience }
  env          = merge(var.env, local.identity_env)
}

# Its own identity: each service is granted only what it needs, by the caller, with _member grants.
resource "google_service_account" "this" {
  project      = var.project
  account_id   = "${var.name}-run"
  display_name = "Cloud Run service ${var.name}"
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project
  name                = var.name
  location            = var.region
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = google_service_account.this.email
    timeout                          = "${var.timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # Request-based billing: nothing runs after a response (handlers ack only after durable work).
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.invokers

  project  = google_cloud_run_v2_service.this.project
  location = google_cloud_run_v2_service.this.location
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}
