"""Downstream HTTP/1.1 and TCP connection handling: the request path from socket to Backend."""
