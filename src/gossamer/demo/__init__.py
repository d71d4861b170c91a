"""The bundled demo: Istio's Bookinfo services (the applications arrive with the local runtime)."""

from importlib import resources


def manifests() -> str:
    """The demo's mesh config: Bookinfo's Services and their version subsets."""
    return resources.files(__package__).joinpath("bookinfo.yaml").read_text(encoding="utf-8")
