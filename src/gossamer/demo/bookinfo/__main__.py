"""`python -m gossamer.demo.bookinfo <service> [--port 9080] [--version vN]`."""

from gossamer.demo.bookinfo.cli import main

main()
