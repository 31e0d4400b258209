# ADMIN_API_KEY (and any other secret_env of deploy/functions.yaml) lives in Secret Manager.
# Terraform creates the secret, never its value: add a version out of band (README "Deploy")
# so the key is not in the Terraform state.
resource "google_secret_manager_secret" "env" {
  for_each = var.secret_env

  secret_id = each.value

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "env" {
  for_each = var.secret_env

  secret_id = google_secret_manager_secret.env[each.key].id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member
}
