variable "project" {
  type        = string
  description = "Project id of the topics and subscriptions."
}

variable "topic_name" {
  type        = string
  description = "Topic the push subscription reads."
}

variable "subscription_name" {
  type        = string
  description = "Name of the push subscription."
}

variable "push_endpoint" {
  type        = string
  description = "HTTPS URL Pub/Sub POSTs each message to."

  validation {
    condition     = can(regex("^https://", var.push_endpoint))
    error_message = "push_endpoint must be an https URL."
  }
}

variable "oidc_audience" {
  type        = string
  description = "Audience of the OIDC token Pub/Sub attaches (the receiving service's URL)."
}

variable "ack_deadline_seconds" {
  type        = number
  description = "Ack deadline, which for push is also Pub/Sub's HTTP request timeout (10-600 s)."

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be 10-600 (Pub/Sub's range)."
  }
}

variable "minimum_backoff" {
  type        = string
  description = "Retry policy: shortest wait before redelivering a nacked message, e.g. \"10s\"."

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?s$", var.minimum_backoff))
    error_message = "minimum_backoff must be a duration in seconds such as \"10s\"."
  }
}

variable "maximum_backoff" {
  type        = string
  description = "Retry policy: longest wait before redelivering, e.g. \"600s\" (at most 600 s)."

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?s$", var.maximum_backoff))
    error_message = "maximum_backoff must be a duration in seconds such as \"600s\"."
  }
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries before a message goes to the dead-letter topic (5-100)."

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be 5-100 (Pub/Sub's range)."
  }
}

variable "dead_letter_topic_name" {
  type        = string
  description = "Topic that receives messages after max_delivery_attempts."
}

variable "dead_letter_topic_retention" {
  type        = string
  description = "Message retention of the dead-letter topic, e.g. \"2678400s\" (lets its subscription seek back)."
  default     = "2678400s"
}

variable "dead_letter_subscription_name" {
  type        = string
  description = "Pull subscription on the dead-letter topic (without one, dead letters are dropped)."
}

variable "dead_letter_ack_deadline_seconds" {
  type        = number
  description = "Ack deadline of the dead-letter pull subscription."

  validation {
    condition     = var.dead_letter_ack_deadline_seconds >= 10 && var.dead_letter_ack_deadline_seconds <= 600
    error_message = "dead_letter_ack_deadline_seconds must be 10-600."
  }
}

variable "dead_letter_message_retention" {
  type        = string
  description = "Message retention of the dead-letter pull subscription, e.g. \"604800s\" (7 days, the maximum)."
}

variable "pubsub_service_agent_email" {
  type        = string
  description = "service-<project-number>@gcp-sa-pubsub.iam.gserviceaccount.com: forwards dead letters, mints the push OIDC tokens."

  validation {
    condition     = can(regex("^service-[0-9]+@gcp-sa-pubsub\\.iam\\.gserviceaccount\\.com$", var.pubsub_service_agent_email))
    error_message = "pubsub_service_agent_email must be service-<project-number>@gcp-sa-pubsub.iam.gserviceaccount.com."
  }
}

variable "kms_key_name" {
  type        = string
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) that encrypts both topics' messages; null for Google-managed encryption. The Pub/Sub service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> or null."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels of the topics and subscriptions."
  default     = {}
}
