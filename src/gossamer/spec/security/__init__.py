"""security.istio.io kinds: PeerAuthentication, AuthorizationPolicy, RequestAuthentication."""
