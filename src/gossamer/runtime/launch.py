"""Command lines for processes the runtime starts inside pods.

A pod process is started as `[ip netns exec <ns>] [setpriv --regid <gid> ...] LAUNCHER argv`:
`ip netns exec` enters the pod's network namespace (and bind-mounts `/etc/netns/<ns>/hosts`
over `/etc/hosts`), `setpriv` gives the sidecar Istio's proxy group, and LAUNCHER, last so no
credential change clears it, asks the kernel to SIGKILL the process if the runtime dies. Each
step `exec`s the next, so the PID the runtime holds is the final program's.

The sidecar keeps UID 0 and takes GID 1337: the interception rules exempt the proxy's UID *or*
GID, and UID 0 can still read a checkout under a private home directory.
"""

from __future__ import annotations

from collections.abc import Sequence

from gossamer.runtime.envoy import with_parent_death_signal

SIDECAR_GID = 1337


def pod_argv(argv: Sequence[str], *, netns: str | None = None, gid: int | None = None) -> list[str]:
    """`argv` as a pod process: in `netns` (None: the host's), with group `gid` (None: ours)."""
    if not argv:
        raise ValueError("empty argv")
    prefix: list[str] = []
    if netns is not None:
        prefix += ["ip", "netns", "exec", netns]
    if gid is not None:
        prefix += ["setpriv", f"--regid={gid}", "--clear-groups", "--"]
    return prefix + with_parent_death_signal(argv)
