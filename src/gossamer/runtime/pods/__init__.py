"""Pod network primitives: a pod is a network namespace on the `gossamer0` bridge with
Istio-style transparent interception (issue 4)."""

from gossamer.runtime.pods.addressing import PodAddressing
from gossamer.runtime.pods.interception import InterceptionPorts, interception_rules
from gossamer.runtime.pods.network import PodNetwork, cleanup_all

__all__ = [
    "InterceptionPorts",
    "PodAddressing",
    "PodNetwork",
    "cleanup_all",
    "interception_rules",
]
