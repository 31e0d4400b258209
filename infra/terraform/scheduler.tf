# Scheduled ingest pulls: POST /api/v1/series/{s}/pull {"count": n} on the ingest service, as
# the tenant in X-Tenant-ID, authenticated with an OIDC token of the scheduler service account
# (the service is private) and, with TENANT_AUTH=keys, the tenant's key in X-Tenant-Key
# (var.ingest_pull_tenant_keys). The pull observes the next n values of the series' source.
locals {
  ingest_url = google_cloud_run_v2_service.function["ingest"].uri
  ingest_pulls = {
    for p in var.ingest_pulls : replace("${p.tenant}-${p.series}", ".", "_") => p
  }
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_ingest" {
  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.function["ingest"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_scheduler_job" "ingest_pull" {
  for_each = local.ingest_pulls

  name             = "${var.service_prefix}-pull-${each.key}"
  description      = "Pull series ${each.value.series} for tenant ${each.value.tenant}"
  region           = coalesce(var.scheduler_region, var.region)
  schedule         = each.value.schedule
  time_zone        = var.scheduler_time_zone
  attempt_deadline = "120s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "10s"
    max_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = "${local.ingest_url}/api/v1/series/${each.value.series}/pull"
    headers = merge(
      {
        "Content-Type" = "application/json"
        "X-Tenant-ID"  = each.value.tenant
      },
      contains(keys(var.ingest_pull_tenant_keys), each.value.tenant) ? {
        "X-Tenant-Key" = var.ingest_pull_tenant_keys[each.value.tenant]
      } : {},
    )
    body = base64encode(jsonencode({ count = each.value.count }))

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.ingest_url
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.scheduler_ingest]
}
