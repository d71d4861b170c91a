"""The bundled demo: Istio's Bookinfo, re-implemented in Python, run by `gossamer up`."""

from importlib import resources

from gossamer.demo.bookinfo.workloads import workload_manifests


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def manifests() -> str:
    """Everything `gossamer up` applies with no PATH: Bookinfo's Services and version subsets,
    its ingress (Gateway + VirtualService on 127.0.0.1:8080) and its six Workloads."""
    return "\n---\n".join((_read("bookinfo.yaml"), _read("gateway.yaml"), workload_manifests()))
