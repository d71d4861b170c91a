"""Real control-plane output for upstream tests: a `web` service, its pods and a DestinationRule,
translated for a sidecar by `build_snapshot` (through the translate tests' simulator)."""

from __future__ import annotations

from gossamer.control.registry import Workload
from tests.control.translate.simulate import Simulator
from tests.control.translate.worlds import node, pod, simulate, world

WEB = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: grpc-api, port: 90}]
"""
HTTP = "outbound|80||web.default.svc.cluster.local"
GRPC = "outbound|90||web.default.svc.cluster.local"
PODS: tuple[Workload, ...] = (
    pod("web-1", "10.0.0.5", {"app": "web"}, locality="us/east/a", weight=2),
    pod("web-2", "10.0.0.6", {"app": "web"}, locality="us/east/a"),
    pod("web-3", "10.0.0.7", {"app": "web"}, locality="eu/west"),
)


def translated(
    traffic_policy: str = "", pods: tuple[Workload, ...] = PODS, *, as_web: bool = False
) -> Simulator:
    """The sidecar snapshot of a client in `default` (or of pod web-1 itself: inbound clusters
    too), with `traffic_policy` (YAML lines indented for `spec.trafficPolicy`) in a
    DestinationRule for `web` when given."""
    text = WEB
    if traffic_policy:
        text += (
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: web}\nspec:\n  host: web\n  trafficPolicy:\n" + traffic_policy
        )
    proxy = node("sidecar", ip="10.0.0.5", labels={"app": "web"}) if as_web else node("sidecar")
    return simulate(world(text, workloads=pods), proxy)
