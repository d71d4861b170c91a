"""Imports every module that defines a kind, so that each registers itself in KINDS."""

from gossamer.spec import core, linkerd, workload  # noqa: F401
from gossamer.spec.gatewayapi import gateway, grpcroute, httproute  # noqa: F401
from gossamer.spec.networking import (  # noqa: F401
    destinationrule,
    serviceentry,
    sidecar,
    virtualservice,
    workloadentry,
)
from gossamer.spec.security import (  # noqa: F401
    authorizationpolicy,
    peerauthentication,
    requestauthentication,
)
