"""The `gossamer` command: one typer app, a module per group of commands."""

from __future__ import annotations

import os

# Gossamer's processes only ever fork to exec (sidecar workers, pods, Envoy), never to run
# Python after a fork; gRPC's fork handlers would only log that they skip each one. gRPC reads
# this when it is imported, hence before the imports below.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import typer

from gossamer.cli import (
    agent,
    ca,
    check,
    config,
    controlplane,
    down,
    logs,
    proxies,
    proxy,
    run,
    up,
    validate,
)

app = typer.Typer(
    name="gossamer",
    help="Gossamer service mesh: run it, configure it, watch it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Gossamer service mesh: run it, configure it, watch it."""


validate.register(app)
config.register(app)
controlplane.register(app)
proxies.register(app)
proxy.register(app)
up.register(app)
down.register(app)
run.register(app)
logs.register(app)
check.register(app)
ca.register(app)
agent.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
