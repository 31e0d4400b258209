# The state store (STATE_URL): an existing one named by var.redis_url, or, when that is null,
# a Memorystore for Valkey cluster created here. Every key of a model carries the hash tag
# {tenant:model}, so its Lua scripts run on one shard of the cluster unchanged
# (docs/architecture.md §4); STATE_URL=redis+cluster://<discovery endpoint> makes the app use
# the cluster client, which finds every shard from that one address.
locals {
  create_valkey = var.redis_url == null
  valkey_endpoint = local.create_valkey ? (
    google_memorystore_instance.state[0].discovery_endpoints[0]
  ) : null
  state_url = local.create_valkey ? (
    "redis+cluster://${local.valkey_endpoint.address}:${local.valkey_endpoint.port}"
  ) : var.redis_url
}

# Memorystore reaches the VPC over Private Service Connect: this policy lets it create the
# endpoints in var.vpc_subnetwork (one policy per network, region and service class).
resource "google_network_connectivity_service_connection_policy" "valkey" {
  count = local.create_valkey ? 1 : 0

  name          = "${var.service_prefix}-valkey"
  location      = var.region
  service_class = "gcp-memorystore"
  network       = "projects/${var.project}/global/networks/${var.vpc_network}"
  description   = "Private Service Connect for the online-ml Valkey cluster"

  psc_config {
    subnetworks = ["projects/${var.project}/regions/${var.region}/subnetworks/${var.vpc_subnetwork}"]
  }

  lifecycle {
    precondition {
      condition     = var.vpc_network != null && var.vpc_subnetwork != null
      error_message = "A Valkey cluster (redis_url = null) needs vpc_network and vpc_subnetwork: Cloud Run reaches it by Direct VPC egress."
    }
  }
}

resource "google_memorystore_instance" "state" {
  count = local.create_valkey ? 1 : 0

  instance_id    = "${var.service_prefix}-state"
  location       = var.region
  engine_version = var.valkey_cluster.engine_version
  node_type      = var.valkey_cluster.node_type
  shard_count    = var.valkey_cluster.shard_count
  replica_count  = var.valkey_cluster.replica_count

  # Private (PSC endpoints in the VPC only), like the redis_url it replaces. Neither IAM auth
  # nor TLS: the app's cluster client sends no IAM token and STATE_URL carries no secret;
  # network reach is the boundary (README "Security and operations").
  authorization_mode      = "AUTH_DISABLED"
  transit_encryption_mode = "TRANSIT_ENCRYPTION_DISABLED"

  desired_psc_auto_connections {
    network    = "projects/${var.project}/global/networks/${var.vpc_network}"
    project_id = var.project
  }

  # An acknowledged learn is in the learn log (architecture.md §4): AOF every second on each
  # node, on top of the replicas STATE_MIN_REPLICAS waits for.
  persistence_config {
    mode = "AOF"
    aof_config {
      append_fsync = "EVERY_SEC"
    }
  }

  zone_distribution_config {
    mode = "MULTI_ZONE"
  }

  deletion_protection_enabled = var.deletion_protection

  lifecycle {
    precondition {
      condition     = var.state_min_replicas <= var.valkey_cluster.replica_count
      error_message = "state_min_replicas exceeds valkey_cluster.replica_count: no append could ever be confirmed (every write would answer 503)."
    }
  }

  depends_on = [google_network_connectivity_service_connection_policy.valkey]
}
