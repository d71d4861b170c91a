"""Sans-IO protocol adapters: bytes in, events out, bytes to write. No sockets, no asyncio."""
