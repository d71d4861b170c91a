"""Backends (Envoy's clusters): endpoints, balancers, circuit breakers, outlier detection, pools."""
