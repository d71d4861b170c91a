"""An ordered HTTP header list with lowercase byte names, as every layer of the proxy sees it.

Bytes end to end: the hot path never decodes a header it does not look at. Names are lowercased
once by the codec; values keep their bytes. Order and duplicates are preserved (HTTP allows both).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Headers:
    """A list of (name, value) pairs; `name` is lowercase bytes."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._items: list[tuple[bytes, bytes]] = list(items)

    @classmethod
    def adopt(cls, items: list[tuple[bytes, bytes]]) -> Headers:
        """Headers over `items` itself, not a copy: for a list the caller made and lets go of
        (the codec and the proxy build several per request)."""
        headers = cls.__new__(cls)
        headers._items = items
        return headers

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        # `get`'s plain loop: any() over a generator costs twice (hot: once or twice a request)
        return isinstance(name, bytes) and self.get(name) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """The first value of `name` (lowercase), else `default`."""
        for n, v in self._items:
            if n == name:
                return v
        return default

    def get_all(self, name: bytes) -> list[bytes]:
        return [v for n, v in self._items if n == name]

    def joined(self, name: bytes) -> bytes | None:
        """All values of `name` joined by ',' (how a repeated header is forwarded as one line)."""
        values = self.get_all(name)
        return b",".join(values) if values else None

    def add(self, name: bytes, value: bytes) -> None:
        self._items.append((name, value))

    def set(self, name: bytes, value: bytes) -> None:
        """Replace every `name` by one value (appended where the first one was, else at the end)."""
        for i, (n, _) in enumerate(self._items):
            if n == name:
                self._items[i] = (name, value)
                self._items[i + 1 :] = [p for p in self._items[i + 1 :] if p[0] != name]
                return
        self._items.append((name, value))

    def remove(self, name: bytes) -> None:
        self._items = [p for p in self._items if p[0] != name]

    def copy(self) -> Headers:
        return Headers(self._items)

    def items(self) -> list[tuple[bytes, bytes]]:
        return self._items
