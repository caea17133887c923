output "name" {
  description = "Service name."
  value       = google_cloud_run_v2_service.this.name
}

output "uri" {
  description = "The service's URL as Cloud Run reports it."
  value       = google_cloud_run_v2_service.this.uri
}

output "audience" {
  description = "OIDC audience callers put in their tokens (the deterministic URL; also OIDC_AUDIENCE in the service)."
  value       = local.audience
}

output "service_account_email" {
  description = "Email of the service's own service account."
  value       = google_service_account.this.email
}

output "service_account_member" {
  description = "The service account as an IAM member string."
  value       = "serviceAccount:${google_service_account.this.email}"
}
