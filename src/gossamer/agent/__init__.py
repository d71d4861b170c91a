"""Gossamer's pilot-agent: the process beside an Envoy sidecar that holds the workload's
certificate (key made here, kept in memory) and serves it to Envoy over SDS on a Unix socket."""
