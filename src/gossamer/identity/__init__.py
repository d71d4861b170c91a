"""Workload identity shared by the control plane's CA and the sidecar: SPIFFE ids and the
workload's own key and CSR (the planes share this, as they share `spec/`)."""
