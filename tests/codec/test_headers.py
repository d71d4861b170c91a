"""Headers: the ordered, duplicate-keeping header list every layer of the proxy shares."""

from __future__ import annotations

from gossamer.codec.headers import Headers


def test_adopt_uses_the_given_list_and_copy_does_not() -> None:
    items = [(b"host", b"a"), (b"x-b", b"1")]
    adopted = Headers.adopt(items)
    assert adopted.items() is items
    copied = adopted.copy()
    copied.add(b"x-c", b"2")
    assert adopted.items() == [(b"host", b"a"), (b"x-b", b"1")]
    assert Headers(items).items() is not items


def test_membership_is_by_exact_lowercase_name() -> None:
    headers = Headers([(b"host", b"a"), (b"x-empty", b"")])
    assert b"host" in headers
    assert b"x-empty" in headers  # an empty value is still present
    assert b"Host" not in headers
    assert b"x-other" not in headers
    assert "host" not in headers
