"""Route tables compiled from RouteConfiguration; pure request → route decisions.

`compile_route_config(pb)` → `RouteTable`; `RouteTable.select(head, authority)` → `Route | None`.
"""

from gossamer.proxy.routing.actions import (
    Action,
    DirectResponse,
    Forward,
    Mirror,
    Redirect,
    WeightedTarget,
)
from gossamer.proxy.routing.compile import compile_route_config
from gossamer.proxy.routing.cors import Cors
from gossamer.proxy.routing.fault import Fault
from gossamer.proxy.routing.request import RequestView
from gossamer.proxy.routing.retry import RetryPolicy
from gossamer.proxy.routing.table import Route, RouteTable, VirtualHost

__all__ = [
    "Action",
    "Cors",
    "DirectResponse",
    "Fault",
    "Forward",
    "Mirror",
    "Redirect",
    "RequestView",
    "RetryPolicy",
    "Route",
    "RouteTable",
    "VirtualHost",
    "WeightedTarget",
    "compile_route_config",
]
