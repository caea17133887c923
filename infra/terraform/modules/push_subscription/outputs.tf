output "topic_name" {
  description = "Name of the source topic."
  value       = google_pubsub_topic.this.name
}

output "topic_id" {
  description = "Id of the source topic."
  value       = google_pubsub_topic.this.id
}

output "subscription_name" {
  description = "Name of the push subscription."
  value       = google_pubsub_subscription.push.name
}

output "dead_letter_topic_name" {
  description = "Name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription_name" {
  description = "Name of the dead-letter pull subscription (replay reads it)."
  value       = google_pubsub_subscription.dead_letter.name
}

output "invoker_member" {
  description = "The push identity as an IAM member string; grant it roles/run.invoker on the endpoint's service."
  value       = "serviceAccount:${google_service_account.invoker.email}"
}

output "invoker_email" {
  description = "Email of the push identity: the `email` of the ID tokens this subscription pushes with (the receiver's ALLOWED_PUSH_EMAILS)."
  value       = google_service_account.invoker.email
}
