"""diff_configs names exactly what changed."""

from __future__ import annotations

from seaway.core.config import Backend, BackendSet, DesiredConfig, Listener
from seaway.core.diff import diff_configs


def config(backend_port: int, listener_ports: tuple[int, ...]) -> DesiredConfig:
    sets = {
        "default/a:80/TCP": BackendSet(
            "default/a:80/TCP", "default/a", "", "TCP", (Backend("10.0.0.1", backend_port),)
        ),
        "default/b:80/TCP": BackendSet(
            "default/b:80/TCP", "default/b", "", "TCP", (Backend("10.0.0.2", 80),)
        ),
    }
    listeners = {}
    for port in listener_ports:
        listener = Listener("TCP", "127.240.0.1", port, "default/a", "", "default/a:80/TCP")
        listeners[listener.key] = listener
    return DesiredConfig(listeners=listeners, backend_sets=sets)


def test_unchanged_config_gives_an_empty_diff() -> None:
    assert diff_configs(config(80, (80,)), config(80, (80,))).empty


def test_changed_backend_set_and_listeners_are_named() -> None:
    diff = diff_configs(config(80, (80, 81)), config(8080, (80, 82)))
    assert diff.backend_sets_changed == ("default/a:80/TCP",)
    assert diff.backend_sets_added == diff.backend_sets_removed == ()
    assert diff.listeners_added == ("TCP/127.240.0.1:82",)
    assert diff.listeners_removed == ("TCP/127.240.0.1:81",)
    assert diff.listeners_changed == ()
    assert not diff.empty
