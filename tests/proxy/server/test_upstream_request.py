"""x-request-id as Envoy generates it: a random version 4 UUID, different per request."""

from __future__ import annotations

import os
import re
import uuid

from gossamer.proxy.server.upstream_request import request_id

_CANONICAL = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_request_ids_are_canonical_rfc4122_version_4_uuids() -> None:
    for _ in range(2000):
        rid = request_id()
        assert _CANONICAL.fullmatch(rid), rid
        parsed = uuid.UUID(rid.decode())
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed).encode() == rid


def test_request_ids_do_not_repeat_and_use_every_variant_digit() -> None:
    ids = [request_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert {rid[19:20] for rid in ids} == {b"8", b"9", b"a", b"b"}


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    request_id()  # the parent holds a batch
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write_end, b"".join(request_id() for _ in range(100)))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    theirs = {child[i : i + 36] for i in range(0, len(child), 36)}
    ours = {request_id() for _ in range(100)}
    assert len(theirs) == 100 and not theirs & ours
