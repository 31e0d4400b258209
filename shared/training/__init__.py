"""Batch training: load a data set, fit a model's fresh snapshot on it in order, score the
held-out part, register the result as a new version. Runs as an async job."""
