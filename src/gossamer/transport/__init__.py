"""The only code that touches sockets directly: listening sockets, original destination."""
