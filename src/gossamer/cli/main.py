"""The `gossamer` command: one typer app, a module per group of commands."""

from __future__ import annotations

import typer

from gossamer.cli import config, controlplane, proxies, proxy, up, validate

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


if __name__ == "__main__":  # pragma: no cover
    app()
