"""Connecting to a Kubernetes API server (kubeconfig or in-cluster), and naming why a request got no answer."""

from __future__ import annotations

import os
import re
import socket
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from hubbletui import __version__
from hubbletui.cluster.kinds_api import RESOURCES
from hubbletui.errors import HubbleTuiError, UnreachableError

USER_AGENT = f"hubbletui/{__version__}"


@dataclass(frozen=True)
class Connection:
    api_client: client.ApiClient
    server: str  # the API server URL, for messages
    source: str  # "live context NAME" or "live in-cluster": shown to users
    notes: tuple[str, ...] = ()  # said once per run, e.g. that TLS verification is off


def connect(context: str | None = None, kubeconfig: str | None = None) -> Connection:
    """Load credentials as kubectl would: --kubeconfig, then $KUBECONFIG, then ~/.kube/config;
    inside a pod with none of those, the pod's service account."""
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    default_path = os.path.expanduser("~/.kube/config")
    in_cluster = path is None and not os.path.exists(default_path) and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if in_cluster and context is None:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise HubbleTuiError(f"in-cluster config: {one_line(str(exc))}") from None
        source = "live in-cluster"
    else:
        source = f"live context {_load_kubeconfig(configuration, path or default_path, context)}"
    # Our own code retries (watch reconnects with backoff); urllib3's retries would log warnings on stderr
    # and make an unreachable server slower to report.
    configuration.retries = False
    # one connection per concurrent list, then one long-lived one per watch, plus relists
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, 2 * len(RESOURCES) + 4)
    notes: tuple[str, ...] = ()
    if not configuration.verify_ssl and configuration.host.startswith("https:"):
        # urllib3 warns on every request (dozens per run); one line says it instead
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        notes = (f"TLS verification is off for {one_line(configuration.host)} (insecure-skip-tls-verify in the "
                 "kubeconfig): anyone on the path could answer for the API server",)
    api_client = client.ApiClient(configuration)
    api_client.user_agent = USER_AGENT
    return Connection(api_client, configuration.host, source, notes)


def _load_kubeconfig(configuration: client.Configuration, path: str, context: str | None) -> str:
    """Fill ``configuration`` from the kubeconfig file(s) at ``path``; returns the context's name."""
    files = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
    if not any(os.path.exists(f) for f in files):
        raise HubbleTuiError(f"no kubeconfig at {path}: pass --kubeconfig, set KUBECONFIG, or run inside a cluster")
    try:
        config.load_kube_config(config_file=path, context=context, client_configuration=configuration,
                                persist_config=False)
        if context is None:
            context = config.list_kube_config_contexts(path)[1]["name"]
    except (ConfigException, yaml.YAMLError, OSError, KeyError, TypeError) as exc:
        raise HubbleTuiError(f"kubeconfig {path}: {one_line(str(exc)) or type(exc).__name__}") from None
    return str(context)


def no_answer(server: str, exc: BaseException) -> UnreachableError:
    """The one-line error for a request that got no HTTP answer from the API server at ``server``."""
    reason = unreachable_reason(exc) or one_line(str(exc)) or type(exc).__name__
    if reason.startswith(_VERIFY_FAILED):
        return UnreachableError(f"{reason} for the Kubernetes API server at {server} (does the kubeconfig's "
                                f"certificate-authority match the server's certificate?)")
    return UnreachableError(f"cannot reach the Kubernetes API server at {server}: {reason}")


_VERIFY_FAILED = "TLS verification failed: "


def unreachable_reason(exc: BaseException) -> str | None:
    """Why a request got no HTTP answer at all, in a few words; None when the server did answer."""
    if isinstance(exc, ApiException):
        # the client turns TLS failures into an ApiException without a status; any other has an answer
        if exc.status:
            return None
        text = _last_line(str(exc.reason))
        verify = re.search(r"certificate verify failed: (.+?)(?: \(_ssl\.c:\d+\))?[')\]]*$", text)
        return f"{_VERIFY_FAILED}{verify.group(1)}" if verify else f"TLS error: {text}"
    if not isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return None
    chain = list(_causes(exc))
    # urllib3's NewConnectionError is a ConnectTimeoutError, so the precise causes are looked for first
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"{_VERIFY_FAILED}{error.verify_message or one_line(str(error))}"
    for error in chain:
        if isinstance(error, (ssl.SSLError, urllib3.exceptions.SSLError)):
            return f"TLS error: {one_line(str(error))}"
        if isinstance(error, socket.gaierror):
            return f"DNS lookup failed ({error.strerror or error})"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, ConnectionResetError):
            return "connection reset by the server"
    for error in chain:
        if isinstance(error, urllib3.exceptions.ReadTimeoutError):
            return "timed out waiting for an answer"
        if isinstance(error, (urllib3.exceptions.ConnectTimeoutError, TimeoutError, socket.timeout)):
            return "timed out connecting"
    return one_line(str(exc)) or type(exc).__name__


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        error = todo.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        todo.extend(e for e in (getattr(error, "reason", None), error.__cause__, error.__context__,
                                *getattr(error, "args", ())) if isinstance(e, BaseException))


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return one_line(lines[-1]) if lines else ""


def one_line(text: str, limit: int = 300) -> str:
    """Server- or file-supplied text made safe for one terminal line: no control characters, bounded."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
