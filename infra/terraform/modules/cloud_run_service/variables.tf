variable "project" {
  type        = string
  description = "Project id of the service."
}

variable "project_number" {
  type        = string
  description = "Project number, for the service's deterministic URL https://<name>-<number>.<region>.run.app (its OIDC audience)."
}

variable "region" {
  type        = string
  description = "Region of the service."
}

variable "name" {
  type        = string
  description = "Service name; also the prefix of its own service account."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,24}[a-z0-9]$", var.name))
    error_message = "name must be 2-26 lowercase letters, digits or hyphens (\"<name>-run\" is its service account id)."
  }
}

variable "image" {
  type        = string
  description = "Container image reference."
}

variable "concurrency" {
  type        = number
  description = "Requests one instance serves at once (max_instance_request_concurrency)."

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000 && floor(var.concurrency) == var.concurrency
    error_message = "concurrency must be a whole number from 1 to 1000."
  }
}

variable "min_instances" {
  type        = number
  description = "Instances kept warm (billed)."
  default     = 0

  validation {
    condition     = var.min_instances >= 0 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number >= 0."
  }
}

variable "max_instances" {
  type        = number
  description = "Most instances the service scales to."

  validation {
    condition     = var.max_instances >= 1 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number >= 1."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "Request timeout; at least the ack deadline of a subscription that pushes here (Pub/Sub's own request timeout)."

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 3600 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number from 1 to 3600."
  }
}

variable "cpu" {
  type        = string
  description = "CPU limit of the container (below 1 forces concurrency 1)."
  default     = "1"
}

variable "memory" {
  type        = string
  description = "Memory limit of the container."
  default     = "512Mi"
}

variable "env" {
  type        = map(string)
  description = "Plain environment variables (OIDC_AUDIENCE is added here, from the deterministic URL)."
  default     = {}
}

variable "secret_env" {
  type = map(object({
    secret  = string
    version = string
  }))
  description = "Environment variables read from Secret Manager: name => {secret (id), version}. The service account must already hold secretAccessor on each."
  default     = {}
}

variable "ingress" {
  type        = string
  description = "INGRESS_TRAFFIC_INTERNAL_ONLY admits Pub/Sub push and Cloud Scheduler of the same project; INGRESS_TRAFFIC_ALL also the internet. IAM authentication applies either way."
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be one of INGRESS_TRAFFIC_INTERNAL_ONLY, INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "invokers" {
  type        = map(string)
  description = "Who may call the service (roles/run.invoker), keyed by a stable name: name => member."
  default     = {}

  validation {
    condition     = alltrue([for m in values(var.invokers) : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "invokers must not be public: allUsers and allAuthenticatedUsers are refused."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to destroy the service."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels of the service."
  default     = {}
}
