"""Deployment sources: the per-function table, its renderer, the parity check, deploy-check."""
