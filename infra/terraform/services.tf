# One Cloud Run service per function group, all from the same image: FUNCTION_SOURCE picks
# the group (functions-framework --asgi, see Dockerfile). Mirrored by infra/k8s/functions.
resource "google_cloud_run_v2_service" "function" {
  for_each = var.functions

  name                = "${var.service_prefix}-${each.key}"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  labels = {
    component = each.key
  }

  template {
    service_account                  = google_service_account.functions.email
    max_instance_request_concurrency = each.value.concurrency
    timeout                          = "${each.value.timeout_seconds}s"
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = each.value.min_scale
      max_instance_count = each.value.max_scale
    }

    # Direct VPC egress to Memorystore and NATS; everything else leaves directly.
    dynamic "vpc_access" {
      for_each = var.vpc_network == null ? [] : [var.vpc_network]
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = vpc_access.value
          subnetwork = var.vpc_subnetwork
        }
      }
    }

    containers {
      image = local.image

      ports {
        name           = "http1"
        container_port = var.container_port
      }

      resources {
        limits = {
          cpu    = each.value.cpu
          memory = each.value.memory
        }
        # CPU stays allocated between requests: the outbox relay to NATS and log compaction
        # run in the background (docs/architecture.md §4 and §6).
        cpu_idle          = false
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = merge(each.value.env, local.platform_env)
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.env[env.key].secret_id
              version = "latest"
            }
          }
        }
      }

      startup_probe {
        initial_delay_seconds = var.probes.startup.initial_delay_seconds
        period_seconds        = var.probes.startup.period_seconds
        timeout_seconds       = var.probes.startup.timeout_seconds
        failure_threshold     = var.probes.startup.failure_threshold
        http_get {
          path = var.probes.startup.path
        }
      }

      liveness_probe {
        initial_delay_seconds = var.probes.liveness.initial_delay_seconds
        period_seconds        = var.probes.liveness.period_seconds
        timeout_seconds       = var.probes.liveness.timeout_seconds
        failure_threshold     = var.probes.liveness.failure_threshold
        http_get {
          path = var.probes.liveness.path
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = toset(keys(local.platform_env)) == toset(var.platform_env_keys)
      error_message = "local.platform_env must set exactly the platform_env keys of deploy/functions.yaml."
    }
  }

  depends_on = [
    google_storage_bucket_iam_member.registry,
    google_secret_manager_secret_iam_member.env,
    google_cloud_run_v2_job.train,
  ]
}

# Who may call the services (private by default).
locals {
  invokers = {
    for pair in setproduct(keys(var.functions), var.invoker_members) :
    "${pair[0]} ${pair[1]}" => { function = pair[0], member = pair[1] }
  }
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invokers

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.function[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
}
