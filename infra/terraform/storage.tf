# The model registry (MODEL_REGISTRY_URI=gs://<bucket>/<prefix>, docs/architecture.md §5): versions
# are created with if_generation_match=0 and aliases moved compare-and-set, so object
# versioning keeps every overwritten aliases.json recoverable.
resource "google_storage_bucket" "registry" {
  # checkov:skip=CKV_GCP_62:Object access is audited with Cloud Audit Logs (Data Access for Cloud Storage); legacy usage-log buckets are not used
  name                        = local.registry_bucket
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Keep noncurrent generations (old aliases.json) for 30 days, at most 10 of each object.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 10
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "registry" {
  bucket = google_storage_bucket.registry.name
  role   = "roles/storage.objectAdmin"
  member = local.runtime_member
}
