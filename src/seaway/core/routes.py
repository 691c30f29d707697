"""Compiled HTTP routes: the lookup structure a request is matched against (pure).

``seaway.core.routes_ingress`` and ``seaway.core.routes_gateway`` compile Ingresses and
HTTPRoutes once per configuration into a ``RouteTable`` per HTTP listener. Matching a
request then needs no object: a dictionary lookup on the host (exact hosts), a walk of
the wildcard suffixes (longest first), then the host's matches in precedence order;
the first that holds wins.

Host precedence (both APIs): an exact host, then the longest matching wildcard, then
the rules without a host. The most specific host that has rules decides alone: when
none of its paths match, the table's fallback (Ingress ``defaultBackend``) answers, or
404. Paths are compared as received (percent-encoding is not decoded).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import parse_qsl

CompiledPathType = Literal["Exact", "Prefix", "RegularExpression"]


def _empty() -> Mapping[str, HostRoutes]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """A compiled RequestHeaderModifier or ResponseHeaderModifier.

    Applied in the Gateway API's order: remove, then set (replace), then add.
    """

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()  # lower-case names

    def apply(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``headers`` edited (a new list; names compared case-insensitively)."""
        drop = set(self.remove) | {name.lower() for name, _ in self.set}
        result = [(n, v) for n, v in headers if n.lower() not in drop]
        result.extend(self.set)
        result.extend(self.add)
        return result

    def then(self, after: HeaderEdit) -> HeaderEdit:
        """One edit doing what this one and then ``after`` do.

        The fields of each name come out in the same order as from the two edits in
        turn; only the order between different names may differ, which HTTP gives no
        meaning (RFC 9110 section 5.3).
        """
        dropped = set(after.remove) | {name.lower() for name, _ in after.set}

        def kept(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
            return tuple((n, v) for n, v in pairs if n.lower() not in dropped)

        # The client's fields named in this edit's set are still replaced: a name
        # ``after`` drops is in its remove or its set.
        return HeaderEdit(
            set=kept(self.set) + after.set,
            add=kept(self.add) + after.add,
            remove=tuple(dict.fromkeys((*self.remove, *after.remove))),
        )


def compose_edits(first: HeaderEdit | None, second: HeaderEdit | None) -> HeaderEdit | None:
    """``first`` then ``second`` as one edit; None when neither edits anything."""
    if first is None:
        return second
    if second is None:
        return first
    return first.then(second)


@dataclass(frozen=True, slots=True)
class RouteBackend:
    """One weighted destination of a route: a backend set of the HTTP data plane.

    ``backend_set`` is a key of ``DesiredConfig.http_backend_sets``, or "" for a
    reference that did not resolve: requests given to it get ``status`` (500 for the
    Gateway API's invalid backendRefs).

    ``request_headers`` and ``response_headers`` are the whole edits of a request
    forwarded here and of its response: the rule's filters, then the backendRef's
    (Gateway API HTTPBackendRef.filters), composed once when the route is compiled.
    The data plane applies these, never the action's.
    """

    backend_set: str
    weight: int = 1
    status: int = 500
    reason: str = ""
    request_headers: HeaderEdit | None = None
    response_headers: HeaderEdit | None = None


@dataclass(frozen=True, slots=True)
class PathEdit:
    """ReplaceFullPath or ReplacePrefixMatch, for redirects and rewrites."""

    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    value: str


@dataclass(frozen=True, slots=True)
class Redirect:
    """A RequestRedirect: the parts of the Location that change, and the status."""

    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path: PathEdit | None = None
    status: int = 302


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A URLRewrite: the Host and path sent to the backend instead of the client's."""

    hostname: str | None = None
    path: PathEdit | None = None


@dataclass(frozen=True, slots=True)
class RouteAction:
    """What to do with a matched request. ``route`` names its origin for people.

    ``request_headers`` and ``response_headers`` are the rule's own edits, for people;
    each backend carries them composed with its backendRef's (see ``RouteBackend``).
    """

    route: str
    backends: tuple[RouteBackend, ...] = ()
    request_headers: HeaderEdit | None = None
    response_headers: HeaderEdit | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    # The answer when there is no backend at all (a rule with neither backends nor
    # a redirect: 500 per the Gateway API).
    status: int = 500


@dataclass(frozen=True, slots=True)
class ValueCondition:
    """A header or query parameter condition; header names are lower-case."""

    name: str
    value: str
    regex: re.Pattern[str] | None = None

    def holds(self, actual: str | None) -> bool:
        if actual is None:
            return False
        if self.regex is not None:
            return self.regex.fullmatch(actual) is not None
        return actual == self.value


@dataclass(frozen=True, slots=True)
class CompiledMatch:
    """One match condition set, pointing at its action (an index into the table's)."""

    path_type: CompiledPathType
    # Exact: the path; Prefix: without trailing '/' ("" matches every path).
    path: str
    action: int
    path_regex: re.Pattern[str] | None = None
    method: str | None = None
    headers: tuple[ValueCondition, ...] = ()
    query: tuple[ValueCondition, ...] = ()

    def path_holds(self, path: str) -> bool:
        if self.path_type == "Exact":
            return path == self.path
        if self.path_type == "Prefix":
            # Element-wise (Kubernetes Ingress and Gateway API PathPrefix): "/foo"
            # matches "/foo", "/foo/" and "/foo/bar", never "/foobar".
            prefix = self.path
            return (
                not prefix
                or path == prefix
                or (path.startswith(prefix) and path[len(prefix)] == "/")
            )
        assert self.path_regex is not None
        return self.path_regex.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class HostRoutes:
    """The matches of one host, in precedence order."""

    matches: tuple[CompiledMatch, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteMatchResult:
    """A matched request: its action, and the match (for ReplacePrefixMatch)."""

    action: RouteAction
    match: CompiledMatch | None


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every route of one HTTP listener, compiled.

    ``wildcards`` are ``(suffix, routes)`` with suffixes such as ``.example.com``,
    longest first. ``single_label_wildcards``: a wildcard covers exactly one label
    (Ingress) rather than one or more (Gateway API).
    """

    actions: tuple[RouteAction, ...] = ()
    exact_hosts: Mapping[str, HostRoutes] = field(default_factory=_empty)
    wildcards: tuple[tuple[str, HostRoutes], ...] = ()
    any_host: HostRoutes | None = None
    fallback: int | None = None  # action when the chosen host has no matching path
    single_label_wildcards: bool = False

    def routes_for(self, host: str) -> HostRoutes | None:
        """The routes of the most specific host entry covering ``host``."""
        routes = self.exact_hosts.get(host)
        if routes is not None:
            return routes
        for suffix, wildcard in self.wildcards:
            if host.endswith(suffix) and len(host) > len(suffix):
                label = host[: -len(suffix)]
                if not self.single_label_wildcards or "." not in label:
                    return wildcard
        return self.any_host

    def match(
        self,
        host: str,
        path: str,
        method: str,
        headers: Sequence[tuple[str, str]],
        query: str,
    ) -> RouteMatchResult | None:
        """The action for a request, or None (404). ``host`` lower-case, without port."""
        routes = self.routes_for(host)
        if routes is not None:
            params: dict[str, str] | None = None
            for m in routes.matches:
                if not m.path_holds(path):
                    continue
                if m.method is not None and m.method != method:
                    continue
                if m.headers and not all(c.holds(_header(headers, c.name)) for c in m.headers):
                    continue
                if m.query:
                    if params is None:
                        params = _query(query)
                    if not all(c.holds(params.get(c.name)) for c in m.query):
                        continue
                return RouteMatchResult(self.actions[m.action], m)
        if self.fallback is not None:
            return RouteMatchResult(self.actions[self.fallback], None)
        return None


def _header(headers: Sequence[tuple[str, str]], lower_name: str) -> str | None:
    for name, value in headers:
        if name.lower() == lower_name:
            return value
    return None


def _query(query: str) -> dict[str, str]:
    """Query parameters by name, the first value of each (names are case-sensitive)."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def normalize_host(host_header: str) -> str:
    """The Host header without port and trailing dot, lower-case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    name, _, _ = host.partition(":")
    return name.rstrip(".")


def replace_path(path: str, edit: PathEdit, match: CompiledMatch | None) -> str:
    """The path after ReplaceFullPath or ReplacePrefixMatch.

    ReplacePrefixMatch replaces the matched prefix element-wise: with prefix ``/foo``
    and replacement ``/bar``, ``/foo/x`` becomes ``/bar/x``; replacing with ``/``
    gives ``/x``, never ``//x`` (Gateway API HTTPPathModifier).
    """
    if edit.type == "ReplaceFullPath":
        return edit.value
    prefix = match.path if match is not None and match.path_type == "Prefix" else ""
    rest = path[len(prefix) :] if path.startswith(prefix) else path
    replacement = edit.value.rstrip("/")
    if not rest:
        return edit.value if edit.value else "/"
    result = replacement + rest
    return result if result.startswith("/") else "/" + result


def redirect_location(
    redirect: Redirect,
    *,
    scheme: str,
    host: str,
    port: int,
    path: str,
    query: str,
    match: CompiledMatch | None,
) -> str:
    """The Location of a RequestRedirect (Gateway API HTTPRequestRedirectFilter).

    The port is left out when it is the scheme's default. When the redirect changes
    the scheme and names no port, the new scheme's default port is used.
    """
    new_scheme = redirect.scheme or scheme
    new_host = redirect.hostname or host
    if redirect.port is not None:
        new_port = redirect.port
    elif redirect.scheme is not None and redirect.scheme != scheme:
        new_port = _DEFAULT_PORTS.get(new_scheme, port)
    else:
        new_port = port
    new_path = replace_path(path, redirect.path, match) if redirect.path else path
    authority = new_host
    if _DEFAULT_PORTS.get(new_scheme) != new_port:
        authority = f"{new_host}:{new_port}"
    location = f"{new_scheme}://{authority}{new_path}"
    return f"{location}?{query}" if query else location


# RFC 9110 sections 4.2.1 and 4.2.2.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def prefix_value(path: str) -> str:
    """A prefix as compiled: without trailing '/' ("/" becomes "", matching all)."""
    return path.rstrip("/")
