"""Live cluster state: list every kind at once, then (optionally) keep the state current with one watch per kind.

Only get/list/watch requests are made. A kind that cannot be read (its CRD is not installed, RBAC forbids
it) becomes a warning in ``state.warnings``; an API server that cannot be reached is an UnreachableError.
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
from hubbletui.cluster.kube_connect import Connection, connect, one_line, unreachable_reason
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


class KindUnavailableError(Exception):
    """A kind that cannot be read; the message is the warning shown to the user."""


@dataclass
class Listed:
    """One kind, listed: the API version that served it and where a watch resumes."""

    resource: Resource
    version: str
    resource_version: str
    items: list[dict]


@dataclass
class ClusterListing:
    listed: dict[str, Listed] = field(default_factory=dict)  # in RESOURCES order
    warnings: list[str] = field(default_factory=list)  # one per kind that could not be read


def load_live(context: str | None = None, kubeconfig: str | None = None, watch: bool = False,
              state: ClusterState | None = None) -> ClusterState:
    """List every modelled kind into ``state`` (a new one by default) and return it.

    With ``watch``, daemon threads keep the state current until ``state.stop()`` is called.
    """
    conn = connect(context, kubeconfig)
    listing = list_cluster(conn)
    state = state if state is not None else ClusterState()
    state.source = conn.source
    for kind, listed in listing.listed.items():
        state.replace_kind(kind, listed.items)
    state.warnings.extend(w for w in listing.warnings if w not in state.warnings)
    if watch:
        watchers = Watchers(conn, state, listing.listed)
        state.stop = watchers.stop
    else:
        conn.api_client.close()
    return state


def list_cluster(conn: Connection) -> ClusterListing:
    """List all kinds concurrently; kinds that cannot be read become warnings."""
    with ThreadPoolExecutor(max_workers=len(RESOURCES), thread_name_prefix="hubbletui-list") as pool:
        futures = {kind: pool.submit(list_kind, conn, resource) for kind, resource in RESOURCES.items()}
    listing = ClusterListing()
    for kind, future in futures.items():
        try:
            listing.listed[kind] = future.result()
        except KindUnavailableError as exc:
            listing.warnings.append(str(exc))
    return listing


def list_kind(conn: Connection, resource: Resource) -> Listed:
    """List one kind, trying its API versions in order (Istio serves v1 or only v1beta1)."""
    for version in resource.versions:
        try:
            resource_version, items = _list_pages(conn, resource, version)
            return Listed(resource, version, resource_version, items)
        except ApiException as exc:
            if exc.status != 404:
                raise _unavailable(conn, resource, "list", exc) from None
    served = " or ".join(resource.group_version(v) for v in resource.versions)
    raise KindUnavailableError(_with_consequence(f"{resource.kind}: not installed ({served} not served)", resource))


def _list_pages(conn: Connection, resource: Resource, version: str) -> tuple[str, list[dict]]:
    """All items of one kind via limit/continue; returns the list's resourceVersion and the tidied items."""
    items: list[dict] = []
    token: str | None = None
    restarts = 0
    while True:
        try:
            body = _request_json(conn, resource, version, limit=PAGE_SIZE, _continue=token,
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
            if exc.status == 401:
                raise HubbleTuiError(f"the API server at {conn.server} rejected the credentials "
                                     f"(401 Unauthorized): {_status_message(exc)}") from None
            if exc.status:
                raise
            raise UnreachableError(f"cannot reach the Kubernetes API server at {conn.server}: "
                                   f"{unreachable_reason(exc)}") from None
        except orjson.JSONDecodeError as exc:
            raise KindUnavailableError(f"{resource.kind}: the API server at {conn.server} answered with "
                                       f"something that is not JSON ({one_line(str(exc))})") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if attempt == 1 and isinstance(exc, urllib3.exceptions.ProtocolError):
                continue
            raise UnreachableError(f"cannot reach the Kubernetes API server at {conn.server}: "
                                   f"{unreachable_reason(exc)}") from None
        if not isinstance(body, dict):
            raise KindUnavailableError(f"{resource.kind}: the API server at {conn.server} answered with a "
                                       f"{type(body).__name__} instead of a list")
        return body
    raise AssertionError("unreachable: the loop returns or raises")


def _unavailable(conn: Connection, resource: Resource, verb: str, exc: ApiException) -> KindUnavailableError:
    if exc.status == 403:
        return KindUnavailableError(f"{resource.kind}: forbidden by RBAC ({verb} {resource.plural} at cluster scope)")
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
    """One daemon thread per listed kind, each applying watch events to ``state``."""

    def __init__(self, conn: Connection, state: ClusterState, listed: dict[str, Listed]):
        self._conn, self._state = conn, state
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._open: set[RawResponse] = set()  # streams being read, so stop() can cut them
        self._threads = [threading.Thread(target=self._watch_kind, args=(item.resource, item.version,
                                                                         item.resource_version),
                                          name=f"hubbletui-watch-{kind}", daemon=True)
                         for kind, item in listed.items()]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End every watch thread; waits up to ``timeout`` seconds in all."""
        self._stopped.set()
        with self._lock:
            streams = list(self._open)
        for stream in streams:
            _cut(stream)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._conn.api_client.close()

    def _watch_kind(self, resource: Resource, version: str, resource_version: str | None) -> None:
        backoff = Backoff()
        while not self._stopped.is_set():
            if resource_version is None:
                try:
                    resource_version = self._relist(resource, version)
                except KindUnavailableError as exc:
                    self._warn(f"{exc}; {resource.plural} are no longer kept current")
                    return
                except HubbleTuiError as exc:
                    log.info("relist of %s failed: %s", resource.kind, exc)
                    self._stopped.wait(backoff.next())
                    continue
            started, events, broken = time.monotonic(), 0, False
            try:
                with closing(self._stream(resource, version, resource_version)) as stream:
                    for event in stream:
                        resource_version = self._apply(resource, version, event) or resource_version
                        events += 1
            except _GoneError:
                log.info("watch of %s: resourceVersion %s is gone, relisting", resource.kind, resource_version)
                resource_version = None
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                elif exc.status in (403, 404):
                    self._warn(f"{_unavailable(self._conn, resource, 'watch', exc)}; "
                               f"{resource.plural} are no longer kept current")
                    return
                else:
                    log.info("watch of %s failed: %s %s", resource.kind, exc.status, exc.reason)
                    broken = True
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                # a broken stream or a garbled line: reopen from the last resourceVersion seen
                log.info("watch of %s broke: %s", resource.kind, unreachable_reason(exc) or exc)
                broken = True
            healthy = events > 0 or time.monotonic() - started >= HEALTHY_STREAM_SECONDS
            if healthy:
                backoff.reset()
            # never spin on a server that fails, closes at once, or answers 410 again right after a relist
            if broken or not healthy:
                self._stopped.wait(backoff.next())

    def _relist(self, resource: Resource, version: str) -> str:
        """After 410 Gone: read the whole kind again and replace it in the state."""
        try:
            resource_version, items = _list_pages(self._conn, resource, version)
        except ApiException as exc:
            if exc.status in (403, 404):
                raise _unavailable(self._conn, resource, "list", exc) from None
            raise HubbleTuiError(f"{exc.status} {one_line(str(exc.reason))}") from None
        except KindUnavailableError as exc:  # a garbled answer: worth another try later
            raise HubbleTuiError(str(exc)) from None
        self._state.replace_kind(resource.kind, items)
        return resource_version

    def _stream(self, resource: Resource, version: str, resource_version: str) -> Generator[dict, None, None]:
        response = resource.call(self._conn.api_client, version, watch=True, resource_version=resource_version,
                                 allow_watch_bookmarks=True, timeout_seconds=random.randint(*WATCH_SERVER_TIMEOUT),
                                 _request_timeout=(LIST_TIMEOUT[0], WATCH_READ_TIMEOUT))
        with self._lock:
            self._open.add(response)
        try:
            if self._stopped.is_set():
                return
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

    def _warn(self, warning: str) -> None:
        if warning not in self._state.warnings:
            self._state.warnings.append(warning)


def _cut(stream: RawResponse) -> None:
    """Wake a thread blocked reading ``stream``: shut its socket down (closing alone does not wake it)."""
    try:
        stream.shutdown()  # type: ignore[attr-defined]  # urllib3 >= 2.3
    except (AttributeError, ValueError, NotImplementedError, OSError):
        with suppress(OSError):
            stream.close()  # type: ignore[attr-defined]
