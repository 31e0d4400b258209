# Batch training (POST /models/{m}/train): the train function starts an execution of this
# job through the Run Admin API with JOB_TENANT / JOB_ID as container overrides; the task
# runs `python -m shared.training run` on the same image, identity and environment.
resource "google_cloud_run_v2_job" "train" {
  name                = var.train_job.name
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count = 1

    template {
      service_account       = google_service_account.functions.email
      timeout               = "${var.train_job.timeout_seconds}s"
      max_retries           = var.train_job.max_retries
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2"

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
        image   = local.image
        command = slice(var.train_job.command, 0, 1)
        args    = slice(var.train_job.command, 1, length(var.train_job.command))

        resources {
          limits = {
            cpu    = var.train_job.cpu
            memory = var.train_job.memory
          }
        }

        dynamic "env" {
          for_each = merge(var.train_job.env, local.platform_env)
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  depends_on = [google_storage_bucket_iam_member.registry]
}

# The train service starts executions with per-run env overrides (run.jobs.runWithOverrides),
# on this job only.
resource "google_cloud_run_v2_job_iam_member" "train_runner" {
  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_job.train.name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = local.runtime_member
}
