# ---------------------------------------------------------------------------------------
# Set per deployment, in terraform.tfvars (see terraform.tfvars.example).
# ---------------------------------------------------------------------------------------

variable "project" {
  description = "GCP project id that hosts everything."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run services, the training job, the bucket and the scheduler."
  type        = string
  default     = "europe-west1"
}

variable "image_registry" {
  description = "Where the image is pushed, without name:tag (e.g. europe-west1-docker.pkg.dev/my-project/online-ml). Name and tag come from deploy/functions.yaml."
  type        = string

  validation {
    condition     = length(var.image_registry) > 0 && !endswith(var.image_registry, "/")
    error_message = "image_registry is a registry path such as europe-west1-docker.pkg.dev/PROJECT/REPO, with no trailing slash."
  }
}

variable "redis_url" {
  description = "STATE_URL of an existing state store on a private IP, reached through var.vpc_network: redis://10.0.0.3:6379/0 (one primary, e.g. Memorystore for Redis) or redis+cluster://host:port[,host:port...] (a cluster's discovery endpoint or seed nodes). Leave null to create a Memorystore for Valkey cluster (var.valkey_cluster). It becomes a plain env var: put no password in it."
  type        = string
  default     = null

  validation {
    condition     = var.redis_url == null || can(regex("^(rediss?|redis\\+cluster)://", var.redis_url))
    error_message = "redis_url must start with redis://, rediss:// or redis+cluster://."
  }
}

variable "valkey_cluster" {
  description = "Memorystore for Valkey cluster created when redis_url is null (memorystore.tf), reached over Private Service Connect on var.vpc_network / var.vpc_subnetwork. STATE_URL becomes redis+cluster://<discovery endpoint>. replica_count >= state_min_replicas: WAIT needs that many replicas per shard."
  type = object({
    shard_count    = optional(number, 3)
    replica_count  = optional(number, 1)
    node_type      = optional(string, "HIGHMEM_MEDIUM")
    engine_version = optional(string, "VALKEY_8_0")
  })
  default = {}

  validation {
    condition     = var.valkey_cluster.shard_count >= 1 && var.valkey_cluster.replica_count >= 0 && var.valkey_cluster.replica_count <= 5
    error_message = "valkey_cluster needs shard_count >= 1 and replica_count 0..5."
  }
}

variable "state_min_replicas" {
  description = "STATE_MIN_REPLICAS: replicas that must confirm an append (WAIT) before it is acknowledged; not confirmed in STATE_REPLICA_TIMEOUT_MS -> 503. 1 with the default valkey_cluster (one replica per shard): an acknowledged learn survives its primary's failover. 0 acknowledges on the primary alone."
  type        = number
  default     = 1

  validation {
    condition     = var.state_min_replicas >= 0 && var.state_min_replicas <= 5
    error_message = "state_min_replicas must be 0..5."
  }
}

variable "events_replicas" {
  description = "EVENTS_REPLICAS: JetStream replicas of the event stream; 3 on a 3-node NATS cluster (at most its node count), 1 on a single server."
  type        = number
  default     = 3

  validation {
    condition     = var.events_replicas >= 1 && var.events_replicas <= 5
    error_message = "events_replicas must be 1..5."
  }
}

variable "nats_url" {
  description = "NATS_URL of a JetStream-enabled NATS reachable from the VPC. Events are relayed there from the outbox (docs/architecture.md §6)."
  type        = string

  validation {
    condition     = can(regex("^(nats|tls)://", var.nats_url))
    error_message = "nats_url must start with nats:// or tls://."
  }
}

variable "vpc_network" {
  description = "VPC network for Direct VPC egress to Memorystore and NATS (null: no VPC access)."
  type        = string
  default     = null
}

variable "vpc_subnetwork" {
  description = "Subnetwork of var.vpc_network that the instances take their addresses from."
  type        = string
  default     = null
}

variable "registry_bucket" {
  description = "Name of the model-registry bucket (default: <project>-online-ml-registry)."
  type        = string
  default     = null
}

variable "registry_prefix" {
  description = "Object prefix of the registry inside the bucket (MODEL_REGISTRY_URI=gs://<bucket>/<prefix>)."
  type        = string
  default     = "registry"
}

variable "invoker_members" {
  description = "IAM members allowed to call the six services (e.g. user:alice@example.com, group:ml@example.com). The services are private: X-Tenant-ID is no authentication, so allUsers is refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The services are private: grant invoker to identities, never to allUsers or allAuthenticatedUsers."
  }
}

variable "ingest_pulls" {
  description = "Scheduled pulls: Cloud Scheduler POSTs {\"count\": <count>} to /api/v1/series/<series>/pull on the ingest service with X-Tenant-ID: <tenant>."
  type = list(object({
    tenant   = string
    series   = string
    schedule = string
    count    = optional(number, 1)
  }))
  default = []

  validation {
    condition = alltrue([
      for p in var.ingest_pulls :
      can(regex("^[a-z0-9][a-z0-9-]{0,62}$", p.tenant)) && can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", p.series)) && !strcontains(p.series, "..") && p.count >= 1 && p.count <= 1000
    ])
    error_message = "tenant must match ^[a-z0-9][a-z0-9-]{0,62}$, series ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$ (docs/architecture.md §3), count 1..1000."
  }
}

variable "ingest_pull_tenant_keys" {
  description = "Tenant key per tenant of ingest_pulls (POST /api/v1/admin/tenants/<tenant>/keys), sent as X-Tenant-Key: required with TENANT_AUTH=keys, the prod default. Kept in the Terraform state and the Scheduler job's headers: issue a key for the scheduler alone, so it can be revoked alone."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "scheduler_region" {
  description = "Cloud Scheduler region (default: var.region; Scheduler is not offered in every Cloud Run region)."
  type        = string
  default     = null
}

variable "scheduler_time_zone" {
  description = "Time zone of the ingest_pulls schedules."
  type        = string
  default     = "Etc/UTC"
}

variable "deletion_protection" {
  description = "Refuse to destroy the services and the training job (set false to tear down)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------
# Owned by deploy/functions.yaml: set in functions.auto.tfvars.json, which
# `python -m deploy.render` generates. Do not set them here or in terraform.tfvars; edit the
# table and re-render, so Cloud Run and Knative (infra/k8s) stay the same.
# ---------------------------------------------------------------------------------------

variable "service_prefix" {
  description = "Service names are <service_prefix>-<group>."
  type        = string
}

variable "image_name" {
  description = "Image name (one image for every group)."
  type        = string
}

variable "image_tag" {
  description = "Image tag."
  type        = string
}

variable "service_account_id" {
  description = "Account id of the runtime service account of the services and the training job."
  type        = string
}

variable "container_port" {
  description = "Port the container listens on; Cloud Run passes it in PORT."
  type        = number
}

variable "probes" {
  description = "Startup and liveness probes (Cloud Run has no readiness probe in the GA provider)."
  type = object({
    startup = object({
      path                  = string
      initial_delay_seconds = number
      period_seconds        = number
      timeout_seconds       = number
      failure_threshold     = number
    })
    liveness = object({
      path                  = string
      initial_delay_seconds = number
      period_seconds        = number
      timeout_seconds       = number
      failure_threshold     = number
    })
  })
}

variable "platform_env_keys" {
  description = "Env vars bound to this platform's resources (local.platform_env must set exactly these)."
  type        = list(string)
}

variable "secret_env" {
  description = "Env var name => Secret Manager secret id; the value is the secret's latest version."
  type        = map(string)
}

variable "functions" {
  description = "Per function group: source, concurrency, scale bounds, resources, timeout, literal env."
  type = map(object({
    source          = string
    concurrency     = number
    min_scale       = number
    max_scale       = number
    cpu             = string
    memory          = string
    timeout_seconds = number
    env             = map(string)
  }))

  validation {
    condition     = alltrue([for f in var.functions : f.min_scale <= f.max_scale && f.concurrency >= 1])
    error_message = "Every function needs min_scale <= max_scale and concurrency >= 1."
  }
}

variable "push" {
  description = "Push ingestion (pubsub.tf): the function and path Pub/Sub pushes CloudEvents to, delivery attempts before the dead-letter topic, retry backoff."
  type = object({
    function              = string
    path                  = string
    max_delivery_attempts = number
    min_backoff_seconds   = number
    max_backoff_seconds   = number
  })
}

variable "train_job" {
  description = "The Cloud Run Job that runs batch training (TRAIN_JOB_NAME)."
  type = object({
    name            = string
    cpu             = string
    memory          = string
    timeout_seconds = number
    max_retries     = number
    command         = list(string)
    env             = map(string)
  })
}
