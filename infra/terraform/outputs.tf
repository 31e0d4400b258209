output "service_urls" {
  description = "URL of each function group's Cloud Run service."
  value       = { for group, service in google_cloud_run_v2_service.function : group => service.uri }
}

output "train_job_name" {
  description = "The Cloud Run Job of batch training (TRAIN_JOB_NAME)."
  value       = google_cloud_run_v2_job.train.name
}

output "model_registry_uri" {
  description = "MODEL_REGISTRY_URI of the services."
  value       = local.platform_env.MODEL_REGISTRY_URI
}

output "runtime_service_account" {
  description = "Email of the services' and job's service account."
  value       = google_service_account.functions.email
}

output "scheduler_service_account" {
  description = "Email of the identity Cloud Scheduler calls ingest with."
  value       = google_service_account.scheduler.email
}

output "secret_ids" {
  description = "Secret Manager secret of each secret env var (add a version before the first apply of the services)."
  value       = { for name, secret in google_secret_manager_secret.env : name => secret.secret_id }
}

output "state_url" {
  description = "STATE_URL of the services: var.redis_url, or redis+cluster://<discovery endpoint> of the Valkey cluster created here."
  value       = local.state_url
}

output "events_topic" {
  description = "Pub/Sub topic whose messages are pushed to the ingest function as CloudEvents."
  value       = google_pubsub_topic.events.id
}

output "events_dead_letter_subscription" {
  description = "Where events the ingest function refused max_delivery_attempts times are kept."
  value       = google_pubsub_subscription.events_dead_letter.id
}

output "pubsub_push_service_account" {
  description = "Email of the identity Pub/Sub pushes to ingest with (invoker on ingest only)."
  value       = google_service_account.pubsub_push.email
}
