"""The proxy's decisions without a network: the verb of a request (as apiserver resolves it), tier verbs, limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k3sdaas.nautilus.audit import AuditLog
from k3sdaas.nautilus.front import AccessLog
from k3sdaas.nautilus.proxy import Target, allowed, target_of
from k3sdaas.nautilus.ratelimit import RateLimiter


@pytest.mark.parametrize(("method", "path", "query", "verb", "resource", "subresource", "namespace"), [
    ("GET", "/api/v1/namespaces/dev/pods", "", "list", "pods", "", "dev"),
    ("GET", "/api/v1/namespaces/dev/pods", "watch=true&resourceVersion=1", "watch", "pods", "", "dev"),
    ("GET", "/api/v1/namespaces/dev/pods", "watch=1", "watch", "pods", "", "dev"),
    ("GET", "/api/v1/namespaces/dev/pods", "watch=false", "list", "pods", "", "dev"),
    ("GET", "/api/v1/watch/namespaces/dev/pods", "", "watch", "pods", "", "dev"),
    ("GET", "/api/v1/namespaces/dev/pods/web", "", "get", "pods", "", "dev"),
    ("GET", "/api/v1/namespaces/dev/pods/web/log", "follow=true", "get", "pods", "log", "dev"),
    ("GET", "/api/v1/namespaces/dev/pods/web/exec", "command=ls", "create", "pods", "exec", "dev"),
    ("POST", "/api/v1/namespaces/dev/pods/web/attach", "", "create", "pods", "attach", "dev"),
    ("DELETE", "/api/v1/namespaces/dev/pods", "", "deletecollection", "pods", "", "dev"),
    ("DELETE", "/api/v1/namespaces/dev/pods/web", "", "delete", "pods", "", "dev"),
    ("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web/scale", "", "patch", "deployments", "scale", "dev"),
    ("PUT", "/api/v1/namespaces/dev/finalize", "", "update", "namespaces", "finalize", "dev"),
    ("GET", "/api/v1/namespaces/dev", "", "get", "namespaces", "", "dev"),
    ("POST", "/api/v1/namespaces", "", "create", "namespaces", "", ""),
    ("GET", "/api/v1/nodes", "", "list", "nodes", "", ""),
    ("GET", "/api/v1/proxy/namespaces/dev/pods/web", "", "proxy", "pods", "", "dev"),
])
def test_verbs_are_resolved_like_the_apiserver(method: str, path: str, query: str, verb: str, resource: str,
                                               subresource: str, namespace: str) -> None:
    target = target_of(method, path, query)
    assert (target.verb, target.resource, target.subresource, target.namespace) == \
        (verb, resource, subresource, namespace)
    assert target.resource_request


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v2", "/"])
def test_discovery_is_not_a_resource_request(path: str) -> None:
    assert target_of("GET", path, "") == Target("get")


def test_viewer_only_reads_but_may_ask_who_it_is() -> None:
    for method, path in (("GET", "/api/v1/pods"), ("GET", "/api/v1/namespaces/a/pods/b"), ("GET", "/version")):
        assert allowed(1, target_of(method, path, ""))
    assert allowed(1, target_of("GET", "/api/v1/pods", "watch=true"))
    for method, path in (("POST", "/api/v1/namespaces/a/configmaps"), ("DELETE", "/api/v1/namespaces/a/pods"),
                         ("PATCH", "/api/v1/namespaces/a/pods/b"), ("GET", "/api/v1/namespaces/a/pods/b/exec"),
                         ("POST", "/api/v1/namespaces/a/pods/b/portforward"), ("POST", "/api")):
        assert not allowed(1, target_of(method, path, ""))
        assert allowed(2, target_of(method, path, "")) and allowed(4, target_of(method, path, ""))
    for path in ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                 "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                 "/apis/authentication.k8s.io/v1/selfsubjectreviews"):
        assert allowed(1, target_of("POST", path, ""))
    assert not allowed(1, target_of("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", ""))
    assert not allowed(0, target_of("GET", "/api/v1/pods", "")) and not allowed(9, target_of("GET", "/api/v1/pods", ""))


def test_sliding_window_refuses_the_101st_request_and_says_when_to_retry() -> None:
    now = [1000.0]
    limiter = RateLimiter(100, 60.0, clock=lambda: now[0])
    for _ in range(100):
        assert limiter.hit("alice") == 0
        now[0] += 0.5  # 100 requests over 50 s
    assert limiter.hit("alice") == 10  # the first one leaves the window at 1060
    assert limiter.hit("bob") == 0
    now[0] = 1060.0
    assert limiter.hit("alice") == 0
    assert limiter.hit("alice") == 1  # the second one (1000.5) leaves it half a second later
    with pytest.raises(ValueError):
        RateLimiter(0)


async def test_nginx_lines_become_records_and_cached_admissions_count(tmp_path: Path) -> None:
    """The FIFO reader: each nginx line is one audit record; an admission nginx served from its cache (the decision
    never saw it) is counted against the identity's limit, a decided one (MISS) was counted by the decision."""
    audit, limiter = AuditLog(tmp_path / "audit.log"), RateLimiter(10, 60.0)
    reader = AccessLog(audit, limiter)
    line = ('{"user":"sui:0xab","tier":"2","cache":"%s","method":"GET","path":"/k8s/api/v1/pods","status":200,'
            '"time":0.003,"id":"r%d"}\n')
    data = "".join(line % ("HIT" if i % 2 else "MISS", i) for i in range(6)).encode()
    reader.data_received(data[:50])  # lines arrive in pieces
    reader.data_received(data[50:] + b'{"user":"","tier":"","cache":"","method":"G\xffT","path":"/k8s/%00",'
                         b'"status":400,"time":0.000,"id":"bad"}\nnot json\n')
    assert limiter.remaining("0xab") == 7
    await audit.flush()
    records = [json.loads(r) for r in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(r["identity"], r["tier"], r["request_id"], r["status"], r["latency_us"]) for r in records] == \
        [("sui:0xab", 2, f"r{i}", 200, 3000) for i in range(6)] + [("anonymous", 0, "bad", 400, 0)]
    assert records[-1]["verb"] == "G\ufffdT"
