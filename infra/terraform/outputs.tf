output "service_urls" {
  description = "URL of each Cloud Run service."
  value       = local.service_uris
}

output "service_accounts" {
  description = "Email of each service's own service account."
  value = {
    dispatcher = module.dispatcher.service_account_email
    fetcher    = module.fetcher.service_account_email
    loader     = module.loader.service_account_email
  }
}

output "oidc_audiences" {
  description = "Audience each service expects in its callers' ID tokens (its OIDC_AUDIENCE)."
  value       = local.service_audiences
}

output "image_repository" {
  description = "Push the images here: <image_repository>/<service>:<tag>."
  value       = local.image_repository
}

output "images" {
  description = "Image each service runs."
  value       = local.images
}

output "bucket" {
  description = "Bucket of the part files."
  value       = google_storage_bucket.parts.name
}

output "datasets" {
  description = "BigQuery datasets: main (trades, checkpoints, leases) and staging."
  value = {
    main    = google_bigquery_dataset.main.dataset_id
    staging = google_bigquery_dataset.staging.dataset_id
  }
}

output "traders_table" {
  description = "The table the dispatcher reads wallets from (TRADERS_TABLE)."
  value       = local.traders_table
}

output "subscriptions" {
  description = "Per push subscription: its topic, dead-letter topic and dead-letter pull subscription."
  value = {
    for name, m in module.push : name => {
      topic                    = m.topic_name
      dead_letter_topic        = m.dead_letter_topic_name
      dead_letter_subscription = m.dead_letter_subscription_name
    }
  }
}

output "fetcher_fleet" {
  description = "How the API tier is shared: each instance's ceiling (the whole key) and floor (the key / max instances), instances and concurrency."
  value = {
    tier               = var.dome_tier
    max_instances      = var.fetcher_max_instances
    concurrency        = local.fetcher_concurrency
    ceiling_per_second = local.fetcher_rate_per_second
    ceiling_per_10s    = local.fetcher_rate_per_10s
    floor_per_second   = local.fetcher_floor_per_second
    floor_per_10s      = local.fetcher_floor_per_10s
    # verify_api_counts: the dispatcher's POST /verify asks Dome for counts at this fixed share
    verify_share_per_second = local.verify_api_counts ? local.verify_rate_per_second : 0
    verify_share_per_10s    = local.verify_api_counts ? local.verify_rate_per_10s : 0
  }
}

output "scheduler_job" {
  description = "Run a dispatch now: gcloud scheduler jobs run <this> --location <region>."
  value       = google_cloud_scheduler_job.dispatch.name
}

output "dome_api_key_secret" {
  description = "Add the key as a version of this secret (terraform never holds it)."
  value       = google_secret_manager_secret.dome_api_key.secret_id
}

output "cmek_service_agents" {
  description = "Service agent that uses each optional KMS key (storage, bigquery, pubsub, secret, artifact_registry): grant it roles/cloudkms.cryptoKeyEncrypterDecrypter on the key before setting the matching *_kms_key_name."
  value       = local.cmek_service_agents
}

output "monitoring" {
  description = "The alert policies (keyed by push subscription) and the dashboard (Monitoring > Dashboards > \"Backfill pipeline\")."
  value = {
    dead_letter_alerts = { for sub, policy in google_monitoring_alert_policy.dead_letters : sub => policy.name }
    backlog_alerts     = { for sub, policy in google_monitoring_alert_policy.backlog_age : sub => policy.name }
    fetcher_5xx_alert  = google_monitoring_alert_policy.fetcher_5xx.name
    dashboard          = google_monitoring_dashboard.backfill.id
  }
}
