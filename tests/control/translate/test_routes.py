"""VirtualService HTTP routes pinned by calls: matches, actions, rewrites, per-route policies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.control.translate.simulate import Outcome, Simulator
from tests.control.translate.worlds import cluster, node, simulate, world

SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: other}
spec:
  selector: {app: other}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  subsets: [{name: a, labels: {v: a}}, {name: b, labels: {v: b}}]
"""


def vs(http: str, extra: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web}}
spec:
  hosts: [web]
{extra}  http:
{http}
"""


def sim(http: str, *, labels: dict[str, str] | None = None, extra: str = "") -> Simulator:
    return simulate(world(SERVICES, vs(http, extra)), node("sidecar", labels=labels))


def call(s: Simulator, path: str = "/", **kw: object) -> Outcome:
    return s.call("80", "web", path, **kw)  # type: ignore[arg-type]


def web_routes(s: Simulator) -> list[Any]:
    vhost = next(v for v in s.routes["80"].virtual_hosts if v.name.startswith("web."))
    return list(vhost.routes)


A, B, WEB = cluster("web", 80, "a"), cluster("web", 80, "b"), cluster("web", 80)


def test_first_match_wins_and_nothing_after_a_catch_all() -> None:
    s = sim(
        """  - match: [{uri: {prefix: /x}}]
    route: [{destination: {host: web, subset: a}}]
  - route: [{destination: {host: web, subset: b}}]
  - match: [{uri: {prefix: /y}}]
    route: [{destination: {host: other}}]
"""
    )
    assert call(s, "/xyz").cluster == A
    assert call(s, "/y").cluster == B  # the catch-all shadows the later /y route
    assert len(web_routes(s)) == 2


def test_no_match_is_404_once_a_virtual_service_claims_the_host() -> None:
    s = sim("""  - match: [{uri: {exact: /only}}]
    route: [{destination: {host: web}}]
""")
    assert call(s, "/only").cluster == WEB
    assert call(s, "/other").kind == "404"
    assert call(s, "/only?q=1").cluster == WEB  # the query string is not part of the path


def test_prefix_is_plain_string_prefix_regex_is_full_match_and_case() -> None:
    s = sim(
        """  - match: [{uri: {regex: "/r[0-9]+"}}]
    route: [{destination: {host: web, subset: a}}]
  - match: [{uri: {prefix: /Foo}, ignoreUriCase: true}]
    route: [{destination: {host: web, subset: b}}]
  - match: [{uri: {prefix: /bar}}]
    route: [{destination: {host: other}}]
"""
    )
    assert call(s, "/r12").cluster == A
    assert call(s, "/r12x").kind == "404"  # anchored: the regex must match the whole path
    assert call(s, "/fOObar").cluster == B
    assert call(s, "/barbaz").cluster == cluster("other", 80)
    assert call(s, "/BAR").kind == "404"


def test_headers_without_headers_method_authority_and_query() -> None:
    s = sim(
        """  - match: [{headers: {x-user: {prefix: adm}}, withoutHeaders: {x-block: {}}}]
    route: [{destination: {host: web, subset: a}}]
  - match: [{method: {exact: POST}, queryParams: {v: {exact: "2"}}}]
    route: [{destination: {host: web, subset: b}}]
  - match: [{headers: {x-present: {}}}]
    route: [{destination: {host: other}}]
"""
    )
    assert call(s, headers={"x-user": "admin"}).cluster == A
    assert call(s, headers={"x-user": "admin", "x-block": "1"}).kind == "404"
    assert call(s, "/?v=2", method="POST").cluster == B
    assert call(s, "/?v=3", method="POST").kind == "404"
    assert call(s, "/?v=2").kind == "404"
    assert call(s, headers={"x-present": ""}).cluster == cluster("other", 80)


def test_weights_are_relative_and_zero_weight_is_dropped() -> None:
    s = sim(
        """  - route:
    - {destination: {host: web, subset: a}, weight: 1}
    - {destination: {host: web, subset: b}, weight: 3}
    - {destination: {host: other}, weight: 0}
"""
    )
    assert call(s).shares == {A: 0.25, B: 0.75}
    lone = sim("""  - route: [{destination: {host: web, subset: a}, weight: 0}]
""")
    assert call(lone).cluster == A


def test_port_and_source_selectors_are_config_time() -> None:
    http = """  - match: [{port: 8080}]
    route: [{destination: {host: web, subset: a}}]
  - match: [{sourceLabels: {app: sleep}}]
    route: [{destination: {host: web, subset: b}}]
  - match: [{sourceNamespace: prod}]
    route: [{destination: {host: other}}]
  - route: [{destination: {host: web}}]
"""
    assert call(sim(http, labels={"app": "sleep"})).cluster == B
    plain = sim(http)
    assert call(plain).cluster == WEB
    assert [r.name for r in web_routes(plain)] == ["default/web/3"]


def test_redirect_direct_response_and_rewrites() -> None:
    s = sim(
        """  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, authority: example.org}
  - match: [{uri: {prefix: /moved}}]
    redirect: {prefixRewrite: /here, redirectCode: 308, scheme: https}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: short and stout}}
  - match: [{uri: {prefix: /ratings}}]
    rewrite: {uri: /v1/bookRatings, authority: ratings.internal}
    route: [{destination: {host: web}}]
  - match: [{uri: {exact: /exact}}]
    rewrite: {uri: /whole}
    route: [{destination: {host: web}}]
  - match: [{uri: {prefix: /rx}}]
    rewrite: {uriRegexRewrite: {match: "^/rx/(.*)$", rewrite: "/y/\\\\1"}}
    route: [{destination: {host: web}}]
"""
    )
    old = call(s, "/old/page")
    assert (old.kind, old.status, old.location) == ("redirect", 301, "http://example.org/new")
    moved = call(s, "/moved/x")
    assert (moved.status, moved.location) == (308, "https://web/here/x")
    tea = call(s, "/teapot")
    assert (tea.kind, tea.status, tea.body) == ("direct", 418, "short and stout")
    rewritten = call(s, "/ratings/2?x=1")
    assert (rewritten.path, rewritten.host) == ("/v1/bookRatings/2?x=1", "ratings.internal")
    assert call(s, "/exact").path == "/whole"
    assert call(s, "/rx/a/b").path == "/y/a/b"


def test_timeout_retries_fault_mirror_headers() -> None:
    s = sim(
        """  - match: [{uri: {prefix: /t}}]
    timeout: 3s
    retries: {attempts: 4, perTryTimeout: 1s, retryOn: "gateway-error,503"}
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 12.5}}
      abort: {grpcStatus: UNAVAILABLE}
    mirror: {host: other}
    headers: {request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}}
    route: [{destination: {host: web}}]
  - match: [{uri: {prefix: /off}}]
    retries: {attempts: 0}
    mirrors: [{destination: {host: other}, percentage: {value: 5}}]
    route: [{destination: {host: web}}]
"""
    )
    t = call(s, "/t")
    assert t.timeout == timedelta(seconds=3)
    assert t.retry is not None and t.retry.num_retries.value == 4
    assert t.retry.retry_on == "gateway-error,retriable-status-codes"
    assert list(t.retry.retriable_status_codes) == [503]
    assert t.retry.per_try_timeout.ToTimedelta() == timedelta(seconds=1)
    assert t.fault is not None
    assert t.fault.delay.fixed_delay.ToTimedelta() == timedelta(seconds=2)
    assert t.fault.delay.percentage.numerator == 125_000  # per million
    assert t.abort_status == 14 and t.abort_percent == 0.0  # omitted percentage: nobody
    assert t.mirrors == [(cluster("other", 80), 100.0)]
    assert t.request_headers == {"x-a": "1", "x-b": "2"}
    assert list(t.raw.request_headers_to_remove) == ["x-c"]  # type: ignore[union-attr]
    off = call(s, "/off")
    assert off.retry is None
    assert off.mirrors == [(cluster("other", 80), 5.0)]


def test_per_destination_headers_and_cors() -> None:
    s = sim(
        """  - corsPolicy: {allowOrigins: [{exact: "https://a.example"}], allowMethods: [GET, POST]}
    route:
    - destination: {host: web, subset: a}
      weight: 50
      headers: {request: {set: {x-side: a}}}
    - destination: {host: web, subset: b}
      weight: 50
"""
    )
    route: Any = web_routes(s)[0]
    sides = {
        c.name: [h.header.value for h in c.request_headers_to_add]
        for c in route.route.weighted_clusters.clusters
    }
    assert sides == {A: ["a"], B: []}
    assert "envoy.filters.http.cors" in route.typed_per_filter_config


def test_unknown_subset_names_a_cluster_that_does_not_exist() -> None:
    s = sim("""  - route: [{destination: {host: web, subset: nope}}]
""")
    out = call(s)
    assert out.cluster == cluster("web", 80, "nope")
    assert out.cluster not in s.clusters  # 503 NC at request time, as in Istio
