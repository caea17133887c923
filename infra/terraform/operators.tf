# Operators (docs/design.md, "Who may call"): Cloud Run IAM admits a caller to a service, not to a route,
# and a Google ID token carries an email, never group membership. So operators are ONE service account:
# the dispatcher admits its email on GET /status, POST /verify and POST /dead-letters/replay (ALLOWED_OPERATOR_EMAILS),
# and var.operator_members may mint its ID tokens:
#
#   gcloud auth print-identity-token --impersonate-service-account=<output operator_service_account> \
#     --audiences=<oidc_audiences.dispatcher> --include-email
#
# POST /dispatch stays the scheduler's: `gcloud scheduler jobs run dispatch --location <region>` runs one now.

resource "google_service_account" "operator" {
  project      = var.project
  account_id   = "backfill-operator"
  display_name = "Operators of the backfill (dispatcher /status and /dead-letters/replay)"
}

# Who may act as the operator account: mint its ID tokens (and nothing else on the project).
resource "google_service_account_iam_member" "operators_impersonate" {
  for_each = toset(var.operator_members)

  service_account_id = google_service_account.operator.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

# The operator account may reach the dispatcher; which routes, the dispatcher decides.
resource "google_cloud_run_v2_service_iam_member" "operator_invokes_dispatcher" {
  project  = var.project
  location = var.region
  name     = module.dispatcher.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.operator.email}"
}

output "operator_service_account" {
  description = "Impersonate this account to call the dispatcher's /status, /verify and /dead-letters/replay (see operators.tf)."
  value       = google_service_account.operator.email
}
