"""Monitoring: prequential metrics, drift, freshness, latency, prediction audit, Prometheus.

Kept import-light: the state layer imports `shared.monitoring.prometheus`; River is only
imported by the modules that fold outcomes.
"""
