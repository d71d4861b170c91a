"""Gossamer: a service mesh in Python, driven by Istio-compatible config over Envoy xDS v3."""

__version__ = "0.1.0"
