"""`gossamer proxy` announcing INTERCEPTION_MODE NONE, for the parity world's server-side sidecar.

`gossamer proxy` always announces REDIRECT (it wants the capture listeners; --explicit is a data
plane matter) and has no flag for NONE yet. This runs the same supervisor with the same options
(argv[1]: ProxyOptions fields as JSON) and only that metadata key changed, so the control plane
gives it what it gives an Envoy without iptables: <ip>_<port> inbound listeners bound on its
instance IP, outbound listeners on that IP too.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from typing import Any

from gossamer.proxy.supervisor import run_proxy
from gossamer.proxy.supervisor_options import ProxyOptions


@dataclass(frozen=True, slots=True)
class NoCaptureOptions(ProxyOptions):
    def metadata(self) -> dict[str, Any]:
        meta = ProxyOptions.metadata(self)
        meta["INTERCEPTION_MODE"] = "NONE"
        return meta


def main() -> int:
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run_proxy(NoCaptureOptions(**json.loads(sys.argv[1])))


if __name__ == "__main__":
    sys.exit(main())
