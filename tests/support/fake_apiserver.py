"""A small stand-in for the Kubernetes API server, for tests of the live cluster reader.

It answers the requests the official client makes without discovery: paginated lists carrying a
resourceVersion, chunked watch streams (ADDED/MODIFIED/DELETED, BOOKMARK when asked for), 401 without the
bearer token, 403 for a resource marked forbidden, 404 for a group that is not installed, 410 Gone for a
watch that starts before the compacted history or an expired continue token. HTTP, or HTTPS with a
trustme certificate. Knows nothing of hubbletui: the paths below are written out from the API's layout.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

# path -> (kind, apiVersion, namespaced); built-ins are always served
BUILTIN_PATHS = {
    "/api/v1/namespaces": ("Namespace", "v1", False),
    "/api/v1/pods": ("Pod", "v1", True),
    "/api/v1/serviceaccounts": ("ServiceAccount", "v1", True),
    "/api/v1/services": ("Service", "v1", True),
    "/api/v1/replicationcontrollers": ("ReplicationController", "v1", True),
    "/api/v1/nodes": ("Node", "v1", False),
    "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1", True),
    "/apis/apps/v1/deployments": ("Deployment", "apps/v1", True),
    "/apis/apps/v1/statefulsets": ("StatefulSet", "apps/v1", True),
    "/apis/apps/v1/daemonsets": ("DaemonSet", "apps/v1", True),
    "/apis/apps/v1/replicasets": ("ReplicaSet", "apps/v1", True),
    "/apis/batch/v1/jobs": ("Job", "batch/v1", True),
    "/apis/batch/v1/cronjobs": ("CronJob", "batch/v1", True),
    "/apis/networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", "networking.k8s.io/v1", True),
}
# custom resources: served only once a test installs their CRD
CRD_PATHS = {
    "/apis/cilium.io/v2/ciliumnetworkpolicies": ("CiliumNetworkPolicy", "cilium.io/v2", True),
    "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies": ("CiliumClusterwideNetworkPolicy", "cilium.io/v2", False),
    "/apis/cilium.io/v2/ciliumcidrgroups": ("CiliumCIDRGroup", "cilium.io/v2", False),
    "/apis/security.istio.io/v1/authorizationpolicies": ("AuthorizationPolicy", "security.istio.io/v1", True),
    "/apis/security.istio.io/v1beta1/authorizationpolicies": ("AuthorizationPolicy", "security.istio.io/v1beta1",
                                                               True),
    "/apis/security.istio.io/v1/peerauthentications": ("PeerAuthentication", "security.istio.io/v1", True),
    "/apis/security.istio.io/v1beta1/peerauthentications": ("PeerAuthentication", "security.istio.io/v1beta1",
                                                             True),
}


@dataclass
class Served:
    kind: str
    api_version: str
    namespaced: bool
    custom: bool  # items of a custom resource list carry apiVersion and kind; built-in list items do not
    objects: dict[tuple[str, str], dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


class FakeApiServer:
    """Start with ``with FakeApiServer() as server:``; ``server.url`` is what a kubeconfig points at."""

    def __init__(self, *, token: str = "test-token", tls_cert=None, page_cap: int | None = None):
        self.token = token
        self.page_cap = page_cap  # serve at most this many items per page whatever the client's limit
        self.served: dict[str, Served] = {path: Served(kind, version, namespaced, False)
                                          for path, (kind, version, namespaced) in BUILTIN_PATHS.items()}
        self.forbidden: set[tuple[str, str]] = set()  # (path, verb)
        self._faults: dict[str, list[tuple[int, str | None]]] = {}  # path -> the next answers' (code, Retry-After)
        self.gone_as_http = False  # answer a too-old watch with HTTP 410 instead of an ERROR event
        self.end_watches_at_once = False  # end every watch stream cleanly before any event
        self.list_delay = 0.0  # seconds each list request takes, to see lists overlap
        self.max_lists_in_flight = 0
        self._lists_in_flight = 0
        self.requests: list[Request] = []
        self.delivered: list[tuple[str, str, int]] = []  # (path, event type, resourceVersion) written to a watch
        self.rv = 100
        self._history: list[tuple[int, str, str, dict | None]] = []  # (rv, path, event type, object)
        self._compacted = 0
        self._continues: dict[str, tuple[int, list[dict]]] = {}
        self._expire_next_continue: set[str] = set()  # paths
        self._epoch = 0  # bumped by break_watches()
        self._paused = False
        self._closing = False
        self._cond = threading.Condition()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.app = self  # type: ignore[attr-defined]
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_cert.configure_cert(context)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if tls_cert is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- what tests change -------------------------------------------------------------------------

    def install(self, *paths: str) -> None:
        """Serve these custom-resource paths (as if their CRDs were installed)."""
        for path in paths:
            kind, version, namespaced = CRD_PATHS[path]
            self.served[path] = Served(kind, version, namespaced, True)

    def forbid(self, path: str, verb: str = "list") -> None:
        self.forbidden.add((path, verb))

    def fail_next(self, path: str, *codes: int, retry_after: str | None = None) -> None:
        """Answer the next requests for ``path`` (list or watch) with these error codes, in order: the overload
        and outage answers (429 with Retry-After, 5xx) a real API server gives only when it is in trouble."""
        with self._cond:
            self._faults.setdefault(path, []).extend((code, retry_after) for code in codes)

    def take_fault(self, path: str) -> tuple[int, str | None] | None:
        with self._cond:
            faults = self._faults.get(path)
            return faults.pop(0) if faults else None

    def put(self, path: str, obj: dict) -> int:
        """Create or replace an object (ADDED or MODIFIED for watchers); returns its new resourceVersion."""
        served = self.served[path]
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace", "") if served.namespaced else "", meta["name"])
        with self._cond:
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            meta.setdefault("uid", f"uid-{key[0]}-{key[1]}")
            event = "MODIFIED" if key in served.objects else "ADDED"
            served.objects[key] = obj
            self._history.append((self.rv, path, event, obj))
            self._cond.notify_all()
            return self.rv

    def remove(self, path: str, namespace: str, name: str) -> None:
        served = self.served[path]
        with self._cond:
            obj = served.objects.pop((namespace if served.namespaced else "", name))
            self.rv += 1
            gone = copy.deepcopy(obj)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._history.append((self.rv, path, "DELETED", gone))
            self._cond.notify_all()

    def bookmark(self) -> int:
        """Send every watcher that asked for bookmarks a BOOKMARK at the current resourceVersion."""
        with self._cond:
            self.rv += 1  # as if other kinds changed meanwhile: the bookmark moves the watcher forward
            self._history.append((self.rv, "*", "BOOKMARK", None))
            self._cond.notify_all()
            return self.rv

    def compact(self) -> None:
        """Forget the event history: a watch from an older resourceVersion now gets 410 Gone."""
        with self._cond:
            self._compacted = self.rv
            self._history.clear()

    def break_watches(self) -> None:
        """Cut every open watch stream mid-way, as a dying proxy or API server would."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    def expire_next_continue(self, path: str) -> None:
        """The next continue token presented for ``path`` is refused with 410, as after a long pause."""
        with self._cond:
            self._expire_next_continue.add(path)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold every watch stream (and new ones) while the test changes things behind the client's back."""
        with self._cond:
            self._paused = True
        try:
            yield
        finally:
            with self._cond:
                self._paused = False
                self._cond.notify_all()

    # --- what tests inspect -------------------------------------------------------------------------

    def watches(self, path: str | None = None) -> list[Request]:
        return [r for r in list(self.requests) if r.is_watch and (path is None or r.path == path)]

    def lists(self, path: str | None = None) -> list[Request]:
        return [r for r in list(self.requests) if not r.is_watch and (path is None or r.path == path)]

    def wait_for(self, condition, timeout: float = 5.0) -> None:
        """Wait until ``condition()`` is true; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            time.sleep(0.01)

    # --- serving ------------------------------------------------------------------------------------

    def list_page(self, path: str, limit: int | None, token: str | None) -> tuple[int, dict]:
        served = self.served[path]
        with self._cond:
            if token is not None:
                if path in self._expire_next_continue or token not in self._continues:
                    self._expire_next_continue.discard(path)
                    self._continues.pop(token, None)
                    return 410, status(410, "Expired", "The provided continue parameter is too old to display a "
                                       "consistent list result. You can start a new list without the continue "
                                       "parameter.")
                rv, remaining = self._continues.pop(token)
            else:
                rv = self.rv
                remaining = [self._as_listed(served, served.objects[k]) for k in sorted(served.objects)]
            size = min(x for x in (limit, self.page_cap, len(remaining)) if x is not None)
            page, rest = remaining[:size], remaining[size:]
            meta: dict = {"resourceVersion": str(rv)}
            if rest:
                next_token = f"{path}:{rv}:{len(rest)}:{id(rest)}"
                self._continues[next_token] = (rv, rest)
                meta["continue"] = next_token
                meta["remainingItemCount"] = len(rest)
        return 200, {"kind": f"{served.kind}List", "apiVersion": served.api_version, "metadata": meta,
                     "items": page}

    def count_list(self, change: int) -> None:
        with self._cond:
            self._lists_in_flight += change
            self.max_lists_in_flight = max(self.max_lists_in_flight, self._lists_in_flight)

    @staticmethod
    def _as_listed(served: Served, obj: dict) -> dict:
        item = copy.deepcopy(obj)
        if served.custom:
            item["apiVersion"], item["kind"] = served.api_version, served.kind
        else:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return item

    def watch_events(self, path: str, since: int, bookmarks: bool, deadline: float) -> Iterator[dict | None]:
        """Events after ``since``; ``None`` means the stream is to be cut abruptly."""
        served = self.served[path]
        with self._cond:
            epoch = self._epoch
        while True:
            with self._cond:
                while True:
                    if self._closing or self._epoch != epoch:
                        yield None
                        return
                    if time.monotonic() > deadline:
                        return
                    fresh = [h for h in self._history if h[0] > since]
                    if fresh and not self._paused:
                        break
                    self._cond.wait(0.05)
                since = fresh[-1][0]
            for rv, event_path, event, obj in fresh:
                if event == "BOOKMARK":
                    if bookmarks:
                        yield {"type": "BOOKMARK", "object": {"kind": served.kind, "apiVersion": served.api_version,
                                                              "metadata": {"resourceVersion": str(rv)}}}
                elif event_path == path:
                    yield {"type": event, "object": {"apiVersion": served.api_version, "kind": served.kind,
                                                     **copy.deepcopy(obj)}}

    def too_old(self, since: int) -> bool:
        with self._cond:
            return since < self._compacted


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the client opens a connection per kind at once; a short backlog would drop SYNs (a 1 s retransmit)
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave in one segment: separate small writes would meet delayed ACKs (40 ms a request)
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # quiet: tests read requests instead
        pass

    @property
    def app(self) -> FakeApiServer:
        return self.server.app  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        request = Request("GET", parts.path, query)
        self.app.requests.append(request)
        scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
        if self.app.token and (scheme.lower() != "bearer" or credentials != self.app.token):  # scheme: any case
            return self._send_json(401, status(401, "Unauthorized", "Unauthorized"))
        if parts.path not in self.app.served:
            return self._send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        fault = self.app.take_fault(parts.path)
        if fault is not None:
            code, retry_after = fault
            return self._send_json(code, status(code, "Failure", f"fault {code} for the test"),
                                   {"Retry-After": retry_after} if retry_after else {})
        verb = "watch" if request.is_watch else "list"
        if (parts.path, verb) in self.app.forbidden:
            segments = parts.path.strip("/").split("/")
            group = "" if segments[0] == "api" else segments[1]
            message = (f'{segments[-1]} is forbidden: User "system:serviceaccount:test:reader" cannot {verb} '
                       f'resource "{segments[-1]}" in API group "{group}" at the cluster scope')
            return self._send_json(403, status(403, "Forbidden", message))
        if request.is_watch:
            return self._watch(parts.path, query)
        limit = int(query["limit"]) if query.get("limit") else None
        self.app.count_list(+1)
        try:
            time.sleep(self.app.list_delay)
            code, body = self.app.list_page(parts.path, limit, query.get("continue"))
        finally:
            self.app.count_list(-1)
        self._send_json(code, body)

    def _reject(self) -> None:
        self.app.requests.append(Request(self.command, urlsplit(self.path).path, {}))
        self._send_json(405, status(405, "MethodNotAllowed", "this fake server is read-only"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _reject  # noqa: N815

    def _watch(self, path: str, query: dict[str, str]) -> None:
        since = int(query.get("resourceVersion") or self.app.rv)
        if self.app.too_old(since):
            gone = status(410, "Expired", f"too old resource version: {since} ({self.app.rv})")
            if self.app.gone_as_http:
                return self._send_json(410, gone)
            self._start_chunks()
            self._chunk(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            return self._end_chunks()
        deadline = time.monotonic() + int(query.get("timeoutSeconds") or 1800)
        self._start_chunks()
        if self.app.end_watches_at_once:
            return self._end_chunks()
        bookmarks = query.get("allowWatchBookmarks") == "true"
        try:
            for event in self.app.watch_events(path, since, bookmarks, deadline):
                if event is None:  # cut: close the socket without the final chunk
                    self.close_connection = True
                    return
                self._chunk(json.dumps(event).encode() + b"\n")
                self.app.delivered.append((path, event["type"], int(event["object"]["metadata"]["resourceVersion"])))
            self._end_chunks()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_json(self, code: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_chunks(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def write_kubeconfig(path: Path, server: str, *, token: str = "test-token", ca_pem: bytes | None = None,
                     context: str = "fake") -> Path:
    """A kubeconfig whose current context points at ``server`` with a bearer token."""
    cluster: dict = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    document = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "fake-cluster", "cluster": cluster}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "fake-cluster", "user": "reader"}}],
    }
    path.write_text(yaml.safe_dump(document))
    return path
