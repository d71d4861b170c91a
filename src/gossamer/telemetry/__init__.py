"""Metrics, tracing and access logs."""
