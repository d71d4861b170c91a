"""The istio-init equivalent rules, checked as data (no root needed)."""

from __future__ import annotations

from gossamer.runtime.pods.interception import (
    IN_REDIRECT_CHAIN,
    INBOUND_CHAIN,
    OUTPUT_CHAIN,
    REDIRECT_CHAIN,
    InterceptionPorts,
    interception_rules,
)


def rule_texts(ports: InterceptionPorts | None = None) -> list[str]:
    return [" ".join(argv) for argv in interception_rules(ports)]


def test_every_rule_is_a_nat_table_argv_list() -> None:
    for argv in interception_rules():
        assert argv[:4] == ["iptables", "-w", "-t", "nat"]


def test_chains_are_created_before_they_are_used() -> None:
    texts = rule_texts()
    for chain in (OUTPUT_CHAIN, REDIRECT_CHAIN, INBOUND_CHAIN, IN_REDIRECT_CHAIN):
        created = texts.index(f"iptables -w -t nat -N {chain}")
        first_use = min(i for i, text in enumerate(texts) if f"-j {chain}" in text)
        assert created < first_use


def test_outbound_tcp_goes_to_15001_and_inbound_to_15006() -> None:
    texts = rule_texts()
    assert f"iptables -w -t nat -A {REDIRECT_CHAIN} -p tcp -j REDIRECT --to-ports 15001" in texts
    assert f"iptables -w -t nat -A {IN_REDIRECT_CHAIN} -p tcp -j REDIRECT --to-ports 15006" in texts
    assert f"iptables -w -t nat -A OUTPUT -p tcp -j {OUTPUT_CHAIN}" in texts
    assert f"iptables -w -t nat -A PREROUTING -p tcp -j {INBOUND_CHAIN}" in texts
    # The catch-all redirect is the last outbound rule, after every exception.
    assert texts[-1] == f"iptables -w -t nat -A {OUTPUT_CHAIN} -j {REDIRECT_CHAIN}"


def test_sidecar_uid_gid_and_loopback_are_not_intercepted() -> None:
    texts = rule_texts(InterceptionPorts(sidecar_uid=2001, sidecar_gid=2002))
    returns = [t for t in texts if f"-A {OUTPUT_CHAIN}" in t and t.endswith("-j RETURN")]
    assert f"iptables -w -t nat -A {OUTPUT_CHAIN} -m owner --uid-owner 2001 -j RETURN" in returns
    assert f"iptables -w -t nat -A {OUTPUT_CHAIN} -m owner --gid-owner 2002 -j RETURN" in returns
    assert f"iptables -w -t nat -A {OUTPUT_CHAIN} -d 127.0.0.1/32 -j RETURN" in returns


def test_sidecar_ports_are_excluded_from_inbound_redirect() -> None:
    texts = rule_texts(InterceptionPorts(excluded_inbound_ports=(15000, 15021, 22)))
    excluded = [t for t in texts if f"-A {INBOUND_CHAIN}" in t and t.endswith("-j RETURN")]
    assert [t.split("--dport ")[1].split()[0] for t in excluded] == ["15000", "15021", "22"]
    catch_all = texts.index(f"iptables -w -t nat -A {INBOUND_CHAIN} -p tcp -j {IN_REDIRECT_CHAIN}")
    assert all(texts.index(t) < catch_all for t in excluded)


def test_default_exclusions_cover_the_sidecar_ports() -> None:
    ports = InterceptionPorts().excluded_inbound_ports
    assert {15000, 15001, 15006, 15020, 15021, 15090} <= set(ports)
