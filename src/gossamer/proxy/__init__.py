"""The Gossamer sidecar: xDS client → compiled snapshot → listeners → routing → upstream."""
