"""Runtime workloads come and go with their leases; the registry says when its view changed."""

from __future__ import annotations

from gossamer.control.registry import Registry, Workload


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, ready: bool = True) -> Workload:
    return Workload(name=name, namespace="default", address="10.0.0.1", ready=ready)


def test_a_workload_disappears_when_its_lease_runs_out() -> None:
    clock = FakeClock()
    changes: list[int] = []
    reg = Registry(clock=clock, on_change=lambda: changes.append(1))
    reg.register(pod("a"), ttl=10)
    clock.now += 9
    assert reg.expire() == []
    assert [w.name for w in reg.workloads()] == ["a"]
    clock.now += 2
    assert [w.name for w in reg.expire()] == ["a"]
    assert reg.workloads() == ()
    assert len(changes) == 2


def test_heartbeats_keep_a_workload_and_can_flip_readiness() -> None:
    clock = FakeClock()
    reg = Registry(clock=clock)
    reg.register(pod("a"), ttl=10)
    for _ in range(5):
        clock.now += 8
        assert reg.heartbeat("runtime/default/a", ttl=10)
        assert reg.expire() == []
    generation = reg.generation
    assert reg.heartbeat("runtime/default/a", ttl=10, ready=False)
    assert reg.workloads()[0].ready is False
    assert reg.generation == generation + 1
    assert not reg.heartbeat("runtime/default/unknown", ttl=10)


def test_re_registering_the_same_workload_is_not_a_change() -> None:
    reg = Registry()
    reg.register(pod("a"), ttl=10)
    generation = reg.generation
    reg.register(pod("a"), ttl=10)
    assert reg.generation == generation
    assert reg.deregister("runtime/default/a")
    assert not reg.deregister("runtime/default/a")
    assert "workloads=0" in repr(reg)
