# Monitoring as code: alert policies, three log-based metrics and one dashboard. Every topic and
# subscription name comes from resources.yaml (through the locals in main.tf), never from a literal.
# Alerts notify var.notification_channels; with none, they still open incidents in the console
# (Monitoring > Alerting).

locals {
  # push subscription => the topic its dead letters go to, and the service it pushes to
  monitored_dead_letter_topics = { for name, s in local.push_subscriptions : name => s.dead_letter.topic }
  monitored_push_services      = { for name, s in local.push_subscriptions : name => s.push_service }

  fetcher_resource = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${module.fetcher.name}\""
  fetcher_requests = "${local.fetcher_resource} AND metric.type=\"run.googleapis.com/request_count\""

  # The fetcher logs one line per part file (shared/handlers/fetch.py): "fetched part N: R rows in P pages".
  part_line_regex = "^fetched part [0-9]+: ([0-9]+) rows in [0-9]+ pages"
  # Each 429 is logged when the client retries it ("retrying after 429 from the API, ...") and again when
  # a delivery gives up on it ("will be retried: 429 from the API, ...") (shared/adapters/sources/http.py).
  rate_limited_text = "429 from the API"

  log_metric_names = {
    parts        = "backfill_fetcher_parts"
    part_rows    = "backfill_fetcher_part_rows"
    rate_limited = "backfill_fetcher_api_429"
  }

  alert_documentation = "Runbook: infra/terraform/README.md, \"Operating\". On the dispatcher, `GET /status` counts dead letters, `POST /dead-letters/replay` with `{\"dry_run\": true}` lists them, and the same call without dry_run replays them once the cause is fixed."
}

# --- Log-based metrics ------------------------------------------------------------------------------

resource "google_logging_metric" "fetched_parts" {
  project     = var.project
  name        = local.log_metric_names.parts
  description = "Part files the fetcher wrote (one log line each)."
  filter      = "${local.fetcher_resource} AND jsonPayload.message=~\"${local.part_line_regex}\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Fetcher part files"
  }

  depends_on = [google_project_service.this]
}

resource "google_logging_metric" "part_rows" {
  project         = var.project
  name            = local.log_metric_names.part_rows
  description     = "Trade rows per part file the fetcher wrote (R of its \"fetched part N: R rows in P pages\" line); its sum over time is the trades fetched."
  filter          = "${local.fetcher_resource} AND jsonPayload.message=~\"${local.part_line_regex}\""
  value_extractor = "REGEXP_EXTRACT(jsonPayload.message, \"${local.part_line_regex}\")"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "Fetcher rows per part file"
  }

  # 1, 2, 4, ... 2^20 rows: a part holds at most FETCH_MAX_PAGES pages of up to 1,000 rows.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 21
      growth_factor      = 2
      scale              = 1
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_logging_metric" "rate_limited" {
  project     = var.project
  name        = local.log_metric_names.rate_limited
  description = "429 answers of the trade API seen by the fetcher (log lines containing \"${local.rate_limited_text}\")."
  filter      = "${local.fetcher_resource} AND jsonPayload.message:\"${local.rate_limited_text}\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Fetcher 429s from the API"
  }

  depends_on = [google_project_service.this]
}

# --- Alert policies -----------------------------------------------------------------------------------

# (a) Dead letters. A message reaches a dead-letter topic when Pub/Sub gives up after
# max_delivery_attempts, or when the fetcher dead-letters a wallet itself (a permanent error). The
# dispatcher drains the dead-letter pull subscriptions into its dead_letters table on every call, so their
# backlog (num_undelivered_messages) is back to 0 within a dispatch and a sampled gauge can miss it; the
# topic's publish count cannot. Any message is worth a look: threshold 0, no duration.
resource "google_monitoring_alert_policy" "dead_letters" {
  for_each = local.monitored_dead_letter_topics

  project               = var.project
  display_name          = "Backfill: dead letter on ${each.value}"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "Messages published to ${each.value}"
    condition_threshold {
      filter          = "resource.type=\"pubsub_topic\" AND resource.labels.topic_id=\"${each.value}\" AND metric.type=\"pubsub.googleapis.com/topic/send_message_operation_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message was dead-lettered from `${each.key}` onto `${each.value}`. The dispatcher moves it into the `dead_letters` table on its next call (the wallet is parked): read the reason, fix the cause, replay it. ${local.alert_documentation}"
  }

  depends_on = [google_project_service.this, module.push]
}

# (b) Backlog age on each push subscription: deliveries are stuck or failing over and over.
resource "google_monitoring_alert_policy" "backlog_age" {
  for_each = local.monitored_push_services

  project               = var.project
  display_name          = "Backfill: ${each.key} backlog older than ${var.backlog_age_alert_seconds[each.value]} s"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "Oldest unacked message on ${each.key}"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${each.key}\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.backlog_age_alert_seconds[each.value]
      duration        = "300s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The oldest message on `${each.key}` (pushed to the ${each.value}) has waited more than ${var.backlog_age_alert_seconds[each.value]} s. Check the ${each.value}'s 5xx and its logs (errors, 429s), and the dashboard's backlog chart. ${local.alert_documentation}"
  }

  depends_on = [google_project_service.this, module.push]
}

# (c) The fetcher's 5xx share. A transient failure is answered 503 on purpose (Pub/Sub backs off), so the
# alert is on a sustained fraction of all its responses, not on any 5xx.
resource "google_monitoring_alert_policy" "fetcher_5xx" {
  project               = var.project
  display_name          = "Backfill: fetcher 5xx share above ${var.fetcher_5xx_ratio_threshold}"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "Share of fetcher responses that are 5xx"
    condition_threshold {
      filter             = "${local.fetcher_requests} AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = local.fetcher_requests
      comparison         = "COMPARISON_GT"
      threshold_value    = var.fetcher_5xx_ratio_threshold
      duration           = "600s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than a ${var.fetcher_5xx_ratio_threshold} share of the fetcher's responses were 5xx for 10 minutes: the trade API is failing or rate-limiting beyond the client's retries, or a dependency (GCS, Pub/Sub) is. Read the fetcher's WARNING/ERROR logs. ${local.alert_documentation}"
  }

  depends_on = [google_project_service.this]
}

# --- Dashboard ------------------------------------------------------------------------------------------

locals {
  # A log-based metric in PromQL: logging.googleapis.com/user/<name> -> logging_googleapis_com:user_<name>;
  # a distribution reads as a histogram (_sum, _count).
  part_rows_promql = "logging_googleapis_com:user_${local.log_metric_names.part_rows}"

  dashboard = {
    displayName = "Backfill pipeline"
    gridLayout = {
      columns = 2
      widgets = [
        {
          title = "Throughput: part files per second (fetcher)"
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type=\"logging.googleapis.com/user/${local.log_metric_names.parts}\" AND resource.type=\"cloud_run_revision\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" }
                }
              }
            }]
          }
        },
        {
          title = "Throughput: trades fetched per second"
          xyChart = {
            dataSets = [{
              plotType        = "LINE"
              timeSeriesQuery = { prometheusQuery = "sum(rate(${local.part_rows_promql}_sum[5m]))" }
            }]
          }
        },
        {
          title = "429s from the API per second (fetcher)"
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type=\"logging.googleapis.com/user/${local.log_metric_names.rate_limited}\" AND resource.type=\"cloud_run_revision\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" }
                }
              }
            }]
          }
        },
        {
          title = "Fetcher responses per second, by class"
          xyChart = {
            dataSets = [{
              plotType = "STACKED_AREA"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = local.fetcher_requests
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.response_code_class"] }
                }
              }
            }]
          }
        },
        {
          title = "Backlog: undelivered messages per push subscription"
          xyChart = {
            dataSets = [for name in keys(local.push_subscriptions) : {
              plotType       = "LINE"
              legendTemplate = name
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${name}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
                }
              }
            }]
          }
        },
        {
          title = "Backlog: oldest unacked message age (s) per push subscription"
          xyChart = {
            dataSets = [for name in keys(local.push_subscriptions) : {
              plotType       = "LINE"
              legendTemplate = name
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${name}\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
                }
              }
            }]
          }
        },
        {
          title = "Dead letters published per dead-letter topic"
          xyChart = {
            dataSets = [for topic in values(local.monitored_dead_letter_topics) : {
              plotType       = "STACKED_BAR"
              legendTemplate = topic
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "resource.type=\"pubsub_topic\" AND resource.labels.topic_id=\"${topic}\" AND metric.type=\"pubsub.googleapis.com/topic/send_message_operation_count\""
                  aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM" }
                }
              }
            }]
          }
        },
      ]
    }
  }
}

resource "google_monitoring_dashboard" "backfill" {
  project        = var.project
  dashboard_json = jsonencode(local.dashboard)

  depends_on = [google_project_service.this, google_logging_metric.fetched_parts, google_logging_metric.part_rows, google_logging_metric.rate_limited]
}

# A warning, not an error (a `check` never stops an apply): alerts with no channel reach nobody.
check "alerts_have_a_notification_channel" {
  assert {
    condition     = length(var.notification_channels) > 0
    error_message = "notification_channels is empty: the alert policies open incidents in the console (Monitoring > Alerting) but notify nobody. Pass -var 'notification_channels=[\"projects/<p>/notificationChannels/<id>\"]' (infra/terraform/README.md, \"Where alerts go\")."
  }
}
