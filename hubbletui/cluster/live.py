"""Live cluster state: list every kind at once, then (optionally) keep the state current with one watch per kind.

Only get/list/watch requests are made. What Kubernetes' own clients retry is retried (429 after Retry-After,
5xx, 401/403 while the API server is not ready, broken watches, 410 by relisting), with backoff and jitter. A
kind that still cannot be read (its CRD is not installed, RBAC forbids it) becomes one "Kind: why" warning in
``state.warnings``, kept current by the watchers as kinds become readable or stop being so; nothing readable at
all is a HubbleTuiError; an API server that cannot be reached is an UnreachableError.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, suppress
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3
from kubernetes.client.exceptions import ApiException

from hubbletui.cluster.kinds_api import RESOURCES, RawResponse, Resource
from hubbletui.cluster.kube_connect import Connection, connect, no_answer, one_line, unreachable_reason
from hubbletui.cluster.model import ClusterState, object_key
from hubbletui.cluster.noise import drop_noise
from hubbletui.errors import HubbleTuiError, UnreachableError

log = logging.getLogger(__name__)

PAGE_SIZE = 500
LIST_TIMEOUT = (10, 60)  # (connect, read) seconds for one page
# A watch with no bytes for this long is assumed dead and reopened from its last resourceVersion (the API
# server sends a BOOKMARK about once a minute when asked to, so a healthy quiet stream is not cut).
WATCH_READ_TIMEOUT = 150
WATCH_SERVER_TIMEOUT = (300, 600)  # the server ends each watch after a random span in this range, as client-go does
HEALTHY_STREAM_SECONDS = 10.0  # a stream that lasted this long ended normally, not in a failure loop


# A one-shot list keeps retrying what client-go retries (429, 5xx, 401/403 while the API server is not yet
# ready) for this long before it reports the kind as unreadable; watchers keep retrying for as long as they run.
LIST_RETRY_SECONDS = 5.0
RETRY_AFTER_CAP = 10.0  # a Retry-After longer than this is not waited for in one go
WATCH_RETRY_CAP = 10.0  # longest wait between two attempts to reopen a watch
RECHECK_CAP = 30.0  # longest wait between two attempts to read a kind that could not be read at all
_RETRIED_STATUSES = (429, 500, 502, 503, 504)


class KindUnavailableError(Exception):
    """A kind that cannot be read; the message is the warning shown to the user."""

    def __init__(self, message: str, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden  # RBAC said no (as opposed to: not installed, a server error)


@dataclass
class Listed:
    """One kind, listed: the API version that served it and, per scope (None: cluster-wide, else a namespace),
    where a watch resumes."""

    resource: Resource
    version: str
    scopes: dict[str | None, str]
    items: list[dict]
    note: str | None = None  # what is not visible (read namespace by namespace): a "Kind: ..." warning


@dataclass
class ClusterListing:
    listed: dict[str, Listed] = field(default_factory=dict)  # in RESOURCES order
    warnings: list[str] = field(default_factory=list)  # one per kind that could not be read, or read in part
    forbidden: list[str] = field(default_factory=list)  # kinds RBAC refused

    def check_readable(self, conn: Connection, namespaces: tuple[str, ...] = ()) -> None:
        """Nothing readable is an error naming the missing permission, not an empty cluster."""
        if self.listed:
            return
        if self.forbidden:
            # with namespaces, name a kind they could have given (a namespaced one)
            first = next((RESOURCES[k] for k in self.forbidden if RESOURCES[k].namespaced or not namespaces),
                         RESOURCES[self.forbidden[0]])
            where = f"at cluster scope or in namespace {', '.join(namespaces)}" if namespaces else "at cluster scope"
            others = len(self.forbidden) - 1
            raise HubbleTuiError(
                f"no permission to read the cluster ({one_line(conn.source)}, {one_line(conn.server)}): "
                f"list {first.plural}{f' (and {others} more kinds)' if others else ''} {where} is forbidden; "
                f"grant the read-only ClusterRole in deploy/rbac.yaml (get/list/watch)"
                f"{'' if namespaces else ', or name the namespaces you may read with -n NAMESPACE'}")
        raise HubbleTuiError(f"nothing could be read from the cluster at {one_line(conn.server)}: "
                             f"{self.warnings[0] if self.warnings else 'no kind answered'}")


def load_live(context: str | None = None, kubeconfig: str | None = None, watch: bool = False,
              state: ClusterState | None = None, namespaces: tuple[str, ...] = ()) -> ClusterState:
    """List every modelled kind into ``state`` (a new one by default) and return it.

    With ``watch``, daemon threads keep the state current until ``state.stop()`` is called; kinds that could
    not be read are retried in the background and join the state once readable. ``namespaces`` are read one
    by one for the namespaced kinds that cannot be listed cluster-wide. Nothing readable is a HubbleTuiError.
    """
    conn = connect(context, kubeconfig)
    try:
        listing = list_cluster(conn, namespaces)
        listing.check_readable(conn, namespaces)
    except BaseException:
        conn.api_client.close()
        raise
    state = state if state is not None else ClusterState()
    state.source = conn.source
    for kind, listed in listing.listed.items():
        state.replace_kind(kind, listed.items)
    state.warnings.extend(w for w in (*conn.notes, *listing.warnings) if w not in state.warnings)
    if watch:
        watchers = Watchers(conn, state, listing.listed, namespaces)
        state.stop = watchers.stop
    else:
        conn.api_client.close()
    return state


def list_cluster(conn: Connection, namespaces: tuple[str, ...] = ()) -> ClusterListing:
    """List all kinds concurrently; kinds that cannot be read become warnings."""
    with ThreadPoolExecutor(max_workers=len(RESOURCES), thread_name_prefix="hubbletui-list") as pool:
        futures = {kind: pool.submit(list_kind, conn, resource, namespaces) for kind, resource in RESOURCES.items()}
    listing = ClusterListing()
    for kind, future in futures.items():
        try:
            listing.listed[kind] = listed = future.result()
            if listed.note:
                listing.warnings.append(listed.note)
        except KindUnavailableError as exc:
            listing.warnings.append(str(exc))
            if exc.forbidden:
                listing.forbidden.append(kind)
    return listing


def list_kind(conn: Connection, resource: Resource, namespaces: tuple[str, ...] = (),
              retry_for: float = LIST_RETRY_SECONDS) -> Listed:
    """List one kind cluster-wide; when RBAC forbids that, in each of ``namespaces`` (a namespaced kind)."""
    try:
        version, resource_version, items = _list_versions(conn, resource, None, retry_for)
        return Listed(resource, version, {None: resource_version}, items)
    except ApiException as exc:
        if exc.status != 403 or not namespaces or not resource.namespaced:
            raise _unavailable(conn, resource, "list", exc) from None
    scopes: dict[str | None, str] = {}
    items, refused = [], []
    version = resource.versions[0]
    for namespace in dict.fromkeys(namespaces):
        try:
            version, scopes[namespace], found = _list_versions(conn, resource, namespace, retry_for)
            items += found
        except ApiException as exc:
            if exc.status != 403:
                raise _unavailable(conn, resource, "list", exc, namespace) from None
            refused.append(namespace)
    if not scopes:
        raise KindUnavailableError(f"{resource.kind}: forbidden by RBAC (list {resource.plural} at cluster scope "
                                   f"and in namespace {', '.join(refused)})", forbidden=True)
    note = (f"{resource.kind}: read in namespace {', '.join(n for n in scopes if n)} only (list {resource.plural} "
            f"at cluster scope is forbidden{f'; in {chr(44).join(refused)} too' if refused else ''}); "
            f"{resource.plural} elsewhere are not visible")
    return Listed(resource, version, scopes, items, note)


def _list_versions(conn: Connection, resource: Resource, namespace: str | None,
                   retry_for: float) -> tuple[str, str, list[dict]]:
    """(version, resourceVersion, items), trying the kind's API versions in order (Istio serves v1 or only
    v1beta1). A kind no version of which is served is KindUnavailableError; other refusals are ApiException."""
    for version in resource.versions:
        try:
            resource_version, items = retrying(conn, lambda v=version: _list_pages(conn, resource, v, namespace),
                                               retry_for)
            return version, resource_version, items
        except ApiException as exc:
            if exc.status == 401:
                raise HubbleTuiError(f"the API server at {conn.server} rejected the credentials "
                                     f"(401 Unauthorized): {_status_message(exc)}") from None
            if exc.status != 404:
                raise
    served = " or ".join(resource.group_version(v) for v in resource.versions)
    raise KindUnavailableError(_with_consequence(f"{resource.kind}: not installed ({served} not served)", resource))


def retrying(conn: Connection, call, retry_for: float):
    """``call()``, again after a delay while its ApiException is one client-go retries and ``retry_for``
    seconds have not passed."""
    deadline = time.monotonic() + retry_for
    backoff = Backoff(first=0.2, cap=2.0)
    while True:
        try:
            return call()
        except ApiException as exc:
            delay = retry_delay(conn, exc, backoff)
            if delay is None or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)


def retry_delay(conn: Connection, exc: ApiException, backoff: Backoff) -> float | None:
    """How long to wait before asking again, or None when the answer stands: 429 as Retry-After says, 5xx
    with backoff, 401/403 only while the API server says it is not ready (its RBAC and token caches are filled
    after it starts serving)."""
    if exc.status == 429:
        return min(RETRY_AFTER_CAP, _retry_after(exc) or backoff.next())
    if exc.status in _RETRIED_STATUSES:
        return backoff.next()
    if exc.status in (401, 403) and not server_ready(conn):
        return backoff.next()
    return None


def _retry_after(exc: ApiException) -> float | None:
    try:
        return max(0.1, float((exc.headers or {}).get("Retry-After", "")))
    except (TypeError, ValueError):
        return None


def server_ready(conn: Connection) -> bool:
    """Whether /readyz says the API server is ready. No answer, or one from a server without /readyz, counts as
    ready: only a server that says "not yet" makes a refusal worth retrying."""
    api = conn.api_client
    try:
        response = api.call_api(*api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"]),
                                _request_timeout=(5, 5))
        response.read()
    except (ApiException, urllib3.exceptions.HTTPError, OSError):
        return True
    return not (response.status in (401, 403) or response.status >= 500)


def _list_pages(conn: Connection, resource: Resource, version: str,
                namespace: str | None = None) -> tuple[str, list[dict]]:
    """All items of one kind via limit/continue; returns the list's resourceVersion and the tidied items."""
    items: list[dict] = []
    token: str | None = None
    restarts = 0
    while True:
        try:
            body = _request_json(conn, resource, version, namespace=namespace, limit=PAGE_SIZE, _continue=token,
                                 _request_timeout=LIST_TIMEOUT)
        except ApiException as exc:
            # a continue token expires after some minutes: start over, so the list stays consistent
            if exc.status == 410 and token is not None and restarts < 3:
                items, token, restarts = [], None, restarts + 1
                continue
            raise
        api_version = body.get("apiVersion") or resource.group_version(version)
        for item in body.get("items") or ():
            # items of a built-in list carry no apiVersion or kind; kubectl -o json prints them on each
            item["apiVersion"] = item.get("apiVersion") or api_version
            item["kind"] = resource.kind
            items.append(drop_noise(item))
        meta = body.get("metadata") or {}
        token = meta.get("continue") or None
        if token is None:
            return str(meta.get("resourceVersion") or ""), items


def _request_json(conn: Connection, resource: Resource, version: str, **params: Any) -> dict:
    """One list request. A stale pooled connection is retried once; no answer at all is UnreachableError."""
    for attempt in (1, 2):
        try:
            response = resource.call(conn.api_client, version, **params)
            try:
                body = orjson.loads(response.data)
            finally:
                response.release_conn()
        except ApiException as exc:
            if exc.status:
                raise
            raise no_answer(conn.server, exc) from None
        except orjson.JSONDecodeError as exc:
            raise KindUnavailableError(f"{resource.kind}: the API server at {conn.server} answered with "
                                       f"something that is not JSON ({one_line(str(exc))})") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if attempt == 1 and isinstance(exc, urllib3.exceptions.ProtocolError):
                continue
            raise no_answer(conn.server, exc) from None
        if not isinstance(body, dict):
            raise KindUnavailableError(f"{resource.kind}: the API server at {conn.server} answered with a "
                                       f"{type(body).__name__} instead of a list")
        return body
    raise AssertionError("unreachable: the loop returns or raises")


def _unavailable(conn: Connection, resource: Resource, verb: str, exc: ApiException,
                 namespace: str | None = None) -> KindUnavailableError:
    where = f"in namespace {namespace}" if namespace else "at cluster scope"
    if exc.status == 403:
        return KindUnavailableError(f"{resource.kind}: forbidden by RBAC ({verb} {resource.plural} {where})",
                                    forbidden=True)
    if exc.status == 404:
        return KindUnavailableError(_with_consequence(f"{resource.kind}: no longer served", resource))
    return KindUnavailableError(f"{resource.kind}: {verb} failed at {conn.server} "
                                f"({exc.status} {one_line(str(exc.reason))}: {_status_message(exc)})")


def _with_consequence(text: str, resource: Resource) -> str:
    return f"{text}; {resource.consequence}" if resource.consequence else text


def _status_message(exc: ApiException) -> str:
    """The `message` of the Status object the API server sends with an error, else its raw body."""
    try:
        status = orjson.loads(exc.body or b"")
    except orjson.JSONDecodeError:
        return one_line(str(exc.body or ""), 200)
    return one_line(str(status.get("message", "")) if isinstance(status, dict) else str(status), 200)


class _GoneError(Exception):
    """The watch's resourceVersion is older than the server's history: relist."""


class Backoff:
    """Exponential delays with jitter, so that many watchers do not reconnect in step."""

    def __init__(self, first: float = 0.5, cap: float = 30.0):
        self.first, self.cap, self._failures = first, cap, 0

    def reset(self) -> None:
        self._failures = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.first * 2 ** self._failures)
        self._failures += 1
        return random.uniform(ceiling / 2, ceiling)


class Watchers:
    """Daemon threads keeping ``state`` current: one per listed kind and scope, applying watch events, and one
    per kind that could not be read, retrying until it can (it then hands over to watch threads of its own)."""

    def __init__(self, conn: Connection, state: ClusterState, listed: dict[str, Listed],
                 namespaces: tuple[str, ...] = ()):
        self._conn, self._state, self._namespaces = conn, state, namespaces
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._open: set[RawResponse] = set()  # streams being read, so stop() can cut them
        self._threads: list[threading.Thread] = []
        # kind -> what is not visible even when all goes well (read namespace by namespace)
        self._notes: dict[str, str | None] = {kind: item.note for kind, item in listed.items()}
        self._problems: dict[tuple[str, str | None], str] = {}  # (kind, scope) -> why it is not kept current
        for kind, resource in RESOURCES.items():
            if kind in listed:
                self._watch_listed(listed[kind])
            else:
                self._start(f"hubbletui-watch-{kind}", self._recheck_kind, resource)

    def stop(self, timeout: float = 5.0) -> None:
        """End every watch thread; waits up to ``timeout`` seconds in all."""
        self._stopped.set()
        with self._lock:
            streams = list(self._open)
            threads = list(self._threads)
        for stream in streams:
            _cut(stream)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._conn.api_client.close()

    def _start(self, name: str, target, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            if self._stopped.is_set():
                return
            self._threads.append(thread)
        thread.start()

    def _watch_listed(self, listed: Listed) -> None:
        for scope, resource_version in listed.scopes.items():
            suffix = f"-{scope}" if scope else ""
            self._start(f"hubbletui-watch-{listed.resource.kind}{suffix}", self._watch_scope, listed.resource,
                        listed.version, scope, resource_version)

    def _recheck_kind(self, resource: Resource) -> None:
        """A kind unreadable at the start (RBAC not yet synced or granted, a CRD not yet installed): read it
        again now and then; once it can be read, it joins the state and is watched."""
        backoff = Backoff(first=1.0, cap=RECHECK_CAP)
        while not self._stopped.wait(backoff.next()):
            try:
                listed = list_kind(self._conn, resource, self._namespaces, retry_for=0)
            except (KindUnavailableError, HubbleTuiError) as exc:
                log.info("%s is still unreadable: %s", resource.kind, exc)
                continue
            self._state.replace_kind(resource.kind, listed.items)
            self._notes[resource.kind] = listed.note
            self._report(resource.kind)
            self._watch_listed(listed)
            return

    def _watch_scope(self, resource: Resource, version: str, scope: str | None, resource_version: str | None) -> None:
        kind, backoff = resource.kind, Backoff(cap=WATCH_RETRY_CAP)
        while not self._stopped.is_set():
            delay: float | None = None
            if resource_version is None:
                try:
                    resource_version = self._relist(resource, version, scope)
                    self._problem(kind, scope, None)
                except (KindUnavailableError, HubbleTuiError) as exc:
                    self._problem(kind, scope, f"{_kindless(exc, kind)}; retrying")
                    self._stopped.wait(backoff.next())
                    continue
            started, events, broken = time.monotonic(), 0, False
            try:
                with closing(self._stream(resource, version, scope, resource_version)) as stream:
                    for event in stream:
                        resource_version = self._apply(resource, version, event) or resource_version
                        events += 1
            except _GoneError:
                log.info("watch of %s: resourceVersion %s is gone, relisting", kind, resource_version)
                resource_version = None
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                else:
                    # refused (RBAC not synced after a restart, access withdrawn, a CRD gone) or failing: try
                    # again from the same resourceVersion; a 410 then says when a relist is needed
                    broken = True
                    if exc.status in (401, 403, 404):
                        refused = _kindless(_unavailable(self._conn, resource, "watch", exc, scope), kind)
                        self._problem(kind, scope, f"{refused}; {resource.plural} are not kept current; retrying")
                    delay = retry_delay(self._conn, exc, backoff) if exc.status in _RETRIED_STATUSES else None
                    log.info("watch of %s failed: %s %s", kind, exc.status, exc.reason)
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                # a broken stream or a garbled line: reopen from the last resourceVersion seen
                reason = unreachable_reason(exc) or one_line(str(exc))
                log.info("watch of %s broke: %s", kind, reason)
                if not events:  # opening failed: the kind is stale until a watch is open again
                    self._problem(kind, scope, f"{resource.plural} are not kept current (the API server at "
                                               f"{self._conn.server}: {reason}); retrying")
                broken = True
            healthy = events > 0 or time.monotonic() - started >= HEALTHY_STREAM_SECONDS
            if healthy:
                backoff.reset()
            # never spin on a server that fails, closes at once, or answers 410 again right after a relist
            if broken or not healthy:
                self._stopped.wait(delay if delay is not None else backoff.next())

    def _relist(self, resource: Resource, version: str, scope: str | None) -> str:
        """After 410 Gone: read the whole kind (or its objects in ``scope``) again and replace it in the state."""
        try:
            resource_version, items = retrying(self._conn, lambda: _list_pages(self._conn, resource, version, scope),
                                               LIST_RETRY_SECONDS)
        except ApiException as exc:
            raise _unavailable(self._conn, resource, "list", exc, scope) from None
        self._state.replace_kind(resource.kind, items, namespace=scope)
        return resource_version

    def _stream(self, resource: Resource, version: str, scope: str | None,
                resource_version: str) -> Generator[dict, None, None]:
        response = resource.call(self._conn.api_client, version, namespace=scope, watch=True,
                                 resource_version=resource_version, allow_watch_bookmarks=True,
                                 timeout_seconds=random.randint(*WATCH_SERVER_TIMEOUT),
                                 _request_timeout=(LIST_TIMEOUT[0], WATCH_READ_TIMEOUT))
        with self._lock:
            self._open.add(response)
        try:
            if self._stopped.is_set():
                return
            self._problem(resource.kind, scope, None)  # the server accepted the watch: the kind is current again
            for line in response:
                if self._stopped.is_set():
                    return
                if line.strip():
                    yield orjson.loads(line)
        finally:
            with self._lock:
                self._open.discard(response)
            response.release_conn()

    def _apply(self, resource: Resource, version: str, event: dict) -> str | None:
        """Apply one watch event to the state; returns the resourceVersion to resume from."""
        kind_of_event = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            raise ValueError(f"watch event without an object: {kind_of_event}")
        if kind_of_event == "ERROR":
            if obj.get("code") == 410:
                raise _GoneError()
            raise ValueError(f"watch error {obj.get('code')}: {one_line(str(obj.get('message', '')))}")
        resource_version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind_of_event in ("ADDED", "MODIFIED"):
            obj["apiVersion"] = obj.get("apiVersion") or resource.group_version(version)
            obj["kind"] = resource.kind
            self._state.upsert(drop_noise(obj))
        elif kind_of_event == "DELETED":
            obj["kind"] = resource.kind
            self._state.delete(resource.kind, object_key(obj))
        return resource_version

    def _problem(self, kind: str, scope: str | None, why: str | None) -> None:
        with self._lock:
            if why is None and (kind, scope) not in self._problems:
                return
            if why is None:
                del self._problems[(kind, scope)]
            else:
                self._problems[(kind, scope)] = why
        self._report(kind)

    def _report(self, kind: str) -> None:
        """The kind's one warning in the state: what goes wrong now, else what is never visible, else none."""
        with self._lock:
            problems = [why for (k, _), why in sorted(self._problems.items(), key=lambda p: p[0][1] or "")
                        if k == kind]
        note = self._notes.get(kind)
        self._state.set_unreadable(kind, f"{kind}: {'; '.join(problems)}" if problems else note)


def _kindless(exc: BaseException, kind: str) -> str:
    """An error's text without its leading "Kind: " (the kind's warning adds it once)."""
    return str(exc).removeprefix(f"{kind}: ")


def _cut(stream: RawResponse) -> None:
    """Wake a thread blocked reading ``stream``: shut its socket down (closing alone does not wake it)."""
    try:
        stream.shutdown()  # type: ignore[attr-defined]  # urllib3 >= 2.3
    except (AttributeError, ValueError, NotImplementedError, OSError):
        with suppress(OSError):
            stream.close()  # type: ignore[attr-defined]
