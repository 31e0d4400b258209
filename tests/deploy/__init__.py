"""Deployment tests: the one-source-of-truth render, Terraform/Knative parity, the image."""
