"""Local pods: process supervision, network plumbing and launching real Envoy data planes."""
