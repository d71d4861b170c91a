"""Istio's Bookinfo applications in Python: productpage, details, reviews v1-v3, ratings.

Run one with `python -m gossamer.demo.bookinfo <service> [--port 9080] [--version vN]`;
`workload_manifests()` gives the Workloads that run all six.
"""

from gossamer.demo.bookinfo.workloads import workload_manifests

__all__ = ["workload_manifests"]
