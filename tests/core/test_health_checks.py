"""resolve_health_check: defaults, annotations and backend modes."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from seaway.core.config import HealthCheck
from seaway.core.health_checks import (
    KUBE_PROXY_HEALTHZ_PORT,
    parse_statuses,
    resolve_health_check,
)
from seaway.model import annotations as notes
from seaway.model.objects import HealthCheckSettings, ObjectMeta, Service, ServicePort

DEFAULTS = HealthCheckSettings()


def svc(annotations: dict[str, str] | None = None, **spec: object) -> Service:
    return Service(
        meta=ObjectMeta(name="web", annotations=MappingProxyType(annotations or {})),
        type="LoadBalancer",
        ports=(ServicePort(port=80, node_port=30080),),
        **spec,  # type: ignore[arg-type]
    )


def test_pods_mode_is_not_checked_by_default() -> None:
    assert resolve_health_check(svc(), "pods", DEFAULTS) is None


def test_pods_mode_checked_when_enabled_globally() -> None:
    check = resolve_health_check(svc(), "pods", HealthCheckSettings(pods=True))
    assert check == HealthCheck(
        protocol="tcp", port=None, interval=5.0, timeout=2.0, initial_jitter=5.0
    )
    assert check.time_to_unhealthy() == 12.0


def test_annotations_turn_checks_on_and_override_every_field() -> None:
    check = resolve_health_check(
        svc(
            {
                notes.HEALTH_CHECK_PROTOCOL: "http",
                notes.HEALTH_CHECK_PATH: "/ready",
                notes.HEALTH_CHECK_PORT: "9000",
                notes.HEALTH_CHECK_EXPECTED_STATUSES: "200,204",
                notes.HEALTH_CHECK_INTERVAL: "0.5",
                notes.HEALTH_CHECK_TIMEOUT: "0.25",
                notes.HEALTH_CHECK_HEALTHY_THRESHOLD: "3",
                notes.HEALTH_CHECK_UNHEALTHY_THRESHOLD: "4",
            }
        ),
        "pods",
        DEFAULTS,
    )
    assert check == HealthCheck(
        protocol="http",
        port=9000,
        path="/ready",
        expected_statuses=((200, 200), (204, 204)),
        interval=0.5,
        timeout=0.25,
        healthy_threshold=3,
        unhealthy_threshold=4,
        initial_jitter=0.5,
    )


def test_any_health_annotation_turns_checks_on() -> None:
    check = resolve_health_check(svc({notes.HEALTH_CHECK_INTERVAL: "1"}), "pods", DEFAULTS)
    assert check is not None and check.protocol == "tcp" and check.interval == 1.0


def test_timeout_never_exceeds_the_interval() -> None:
    check = resolve_health_check(
        svc({notes.HEALTH_CHECK_INTERVAL: "1", notes.HEALTH_CHECK_TIMEOUT: "5"}), "pods", DEFAULTS
    )
    assert check is not None and check.timeout == 1.0


@pytest.mark.parametrize(
    ("spec", "port"),
    [
        ({}, KUBE_PROXY_HEALTHZ_PORT),
        ({"external_traffic_policy": "Local", "health_check_node_port": 32000}, 32000),
    ],
)
def test_nodes_mode_checks_kube_proxy_by_default(spec: dict[str, object], port: int) -> None:
    check = resolve_health_check(svc(**spec), "nodes", DEFAULTS)
    assert check is not None
    assert (check.protocol, check.port, check.path) == ("http", port, "/healthz")


def test_none_turns_checks_off_even_for_nodes() -> None:
    assert (
        resolve_health_check(svc({notes.HEALTH_CHECK_PROTOCOL: "none"}), "nodes", DEFAULTS) is None
    )
    assert resolve_health_check(svc(), "nodes", HealthCheckSettings(nodes=False)) is None


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("200", ((200, 200),)),
        ("200-399", ((200, 399),)),
        (" 200 , 300-302", ((200, 200), (300, 302))),
        ("399-200", None),
        ("abc", None),
        ("600", None),
        ("", None),
        ("200-", None),
    ],
)
def test_parse_statuses(text: str, ranges: tuple[tuple[int, int], ...] | None) -> None:
    assert parse_statuses(text) == ranges
