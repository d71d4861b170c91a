"""The inbound mTLS scenarios of tests/proxy/server/test_inbound_mtls.py again on asyncio's own
loop (that directory runs uvloop, the sidecar's loop): the accept path uses only what both
loops provide (`add_reader`, `connect_accepted_socket` with `ssl`), and both must serve it."""

from __future__ import annotations

from tests.proxy.server import test_inbound_mtls as scenarios

ids = scenarios.ids
test_permissive_serves_plaintext_and_mtls_on_one_port = (
    scenarios.test_permissive_serves_plaintext_and_mtls_on_one_port
)
test_strict_refuses_plaintext_strangers_expired_and_anonymous_clients = (
    scenarios.test_strict_refuses_plaintext_strangers_expired_and_anonymous_clients
)
test_rbac_allows_one_spiffe_id_and_denies_another = (
    scenarios.test_rbac_allows_one_spiffe_id_and_denies_another
)
test_the_apps_own_tls_passes_through_untouched = (
    scenarios.test_the_apps_own_tls_passes_through_untouched
)
test_rotation_keeps_open_connections_and_new_ones_see_the_new_certificate = (
    scenarios.test_rotation_keeps_open_connections_and_new_ones_see_the_new_certificate
)
test_a_listener_changing_mode_changes_its_accept_path = (
    scenarios.test_a_listener_changing_mode_changes_its_accept_path
)
test_tcp_chains_see_the_principal_and_sni_too = (
    scenarios.test_tcp_chains_see_the_principal_and_sni_too
)
test_explicit_inbound_capture_serves_the_ports_mtls_chains = (
    scenarios.test_explicit_inbound_capture_serves_the_ports_mtls_chains
)
