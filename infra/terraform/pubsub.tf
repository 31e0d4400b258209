# Push ingestion (README "Push ingestion (CloudEvents)"): producers publish CloudEvents to
# the events topic (attributes type/source/id/tenant, or a structured event as the data);
# the push subscription POSTs each one, in the Pub/Sub envelope, to the ingest service's
# var.push.path with an OIDC token of its own service account. The ingest function answers
# 2xx (applied, or a redelivery it recognises by source and id), 4xx for a bad event, 503 for
# an outage: Pub/Sub retries anything but 2xx with exponential backoff and, after
# var.push.max_delivery_attempts, moves the message to the dead-letter topic. No filter on
# the subscription: a message a filter dropped would be acknowledged unseen, while an unknown
# type reaching the function is dead-lettered, where it can be inspected (the Knative side
# filters per type because its broker carries other events too).
locals {
  push_service  = google_cloud_run_v2_service.function[var.push.function]
  push_endpoint = "${google_cloud_run_v2_service.function[var.push.function].uri}${var.push.path}"
  # The Pub/Sub service agent forwards undeliverable messages to the dead-letter topic.
  pubsub_agent = "serviceAccount:service-${data.google_project.current.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "current" {
  project_id = var.project
}

# The identity in the push requests' OIDC token: invoker on the push function only.
resource "google_service_account" "pubsub_push" {
  account_id   = "${var.service_prefix}-pubsub-push"
  display_name = "online-ml Pub/Sub push to ingest"
}

resource "google_cloud_run_v2_service_iam_member" "pubsub_push" {
  project  = var.project
  location = var.region
  name     = local.push_service.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pubsub_push.email}"
}

# The service agent mints the push SA's OIDC tokens (needed for projects older than April 2021;
# granted on that one account).
resource "google_service_account_iam_member" "pubsub_push_token" {
  service_account_id = google_service_account.pubsub_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic" "events" {
  # checkov:skip=CKV_GCP_83:Encrypted at rest with Google-managed keys like the registry bucket and Secret Manager; a CMEK would need a KMS key ring this module does not manage
  name                       = "${var.service_prefix}-events"
  message_retention_duration = "86400s"
}

resource "google_pubsub_topic" "events_dead_letter" {
  # checkov:skip=CKV_GCP_83:Encrypted at rest with Google-managed keys like the registry bucket and Secret Manager; a CMEK would need a KMS key ring this module does not manage
  name                       = "${var.service_prefix}-events-dead-letter"
  message_retention_duration = "604800s"
}

resource "google_pubsub_subscription" "events_push" {
  name  = "${var.service_prefix}-events-${var.push.function}"
  topic = google_pubsub_topic.events.id

  # A push is answered within the function's timeout; a later ack is a redelivery.
  ack_deadline_seconds       = var.functions[var.push.function].timeout_seconds
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = local.push_endpoint

    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = local.push_service.uri
    }
  }

  retry_policy {
    minimum_backoff = "${var.push.min_backoff_seconds}s"
    maximum_backoff = "${var.push.max_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.events_dead_letter.id
    max_delivery_attempts = var.push.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expires, even when idle
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.pubsub_push,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# Dead letters are kept (a topic without a subscription drops what is published to it) for
# an operator to read and, once fixed, republish to the events topic.
resource "google_pubsub_subscription" "events_dead_letter" {
  name                       = "${var.service_prefix}-events-dead-letter"
  topic                      = google_pubsub_topic.events_dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# The standard dead-lettering grants: the service agent publishes to the dead-letter topic
# and subscribes to (acknowledges on) the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.events_dead_letter.name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  subscription = google_pubsub_subscription.events_push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
