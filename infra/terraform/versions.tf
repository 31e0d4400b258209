terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Pinned to the 6.x line; `terraform init` records the exact build in
      # .terraform.lock.hcl, which is committed with the first apply.
      version = "~> 6.14"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region

  default_labels = {
    app        = "online-ml"
    managed-by = "terraform"
  }
}
