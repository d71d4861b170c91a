"""gateway.networking.k8s.io kinds: HTTPRoute, GRPCRoute (and the Gateway they attach to)."""
