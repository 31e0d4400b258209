# Online-learning ML functions on Cloud Run: six services from one image, a training job,
# the model-registry bucket, the ADMIN_API_KEY secret and a least-privilege identity.
# Per-function settings come from deploy/functions.yaml (functions.auto.tfvars.json).

locals {
  image           = "${var.image_registry}/${var.image_name}:${var.image_tag}"
  registry_bucket = coalesce(var.registry_bucket, "${var.project}-online-ml-registry")

  # The environment bound to this platform: the same keys as k3d's ConfigMap
  # (deploy/functions.yaml platform_env), with Cloud Run's values.
  platform_env = {
    STATE_URL            = local.state_url
    MODEL_REGISTRY_URI   = "gs://${google_storage_bucket.registry.name}/${var.registry_prefix}"
    NATS_URL             = var.nats_url
    GOOGLE_CLOUD_PROJECT = var.project
    TRAIN_JOB_NAME       = var.train_job.name
    TRAIN_JOB_REGION     = var.region
    STATE_MIN_REPLICAS   = tostring(var.state_min_replicas)
    EVENTS_REPLICAS      = tostring(var.events_replicas)
  }

  runtime_member = "serviceAccount:${google_service_account.functions.email}"
}

# The identity of the six services and of the training job. It holds, on single resources
# only: objectAdmin on the registry bucket, accessor on each secret, and the right to start
# the training job with overrides. No project-wide role.
resource "google_service_account" "functions" {
  account_id   = var.service_account_id
  display_name = "online-ml functions and training job"
}

# Cloud Scheduler's identity for the OIDC token of the ingest pulls: invoker on ingest only.
resource "google_service_account" "scheduler" {
  account_id   = "${var.service_prefix}-scheduler"
  display_name = "online-ml scheduled ingest pulls"
}
