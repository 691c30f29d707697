from __future__ import annotations

import ipaddress

from seaway.lab import topology
from seaway.lab.namespaces import PREFIX
from seaway.lab.spec import load_lab


def _all_commands() -> list[list[str]]:
    spec = load_lab(None)
    cmds = topology.topology_commands(spec) + topology.sysctl_commands(spec)
    for i, node in enumerate(n for n in spec.nodes if n.pods):
        cmds += topology.pod_commands(spec, node, f"web-r1-{i}", node.pod_gateway, i)
    return cmds


def test_every_command_runs_inside_a_lab_namespace() -> None:
    for cmd in _all_commands():
        namespace = cmd[2] if cmd[1] == "-n" else cmd[3]
        assert namespace.startswith(PREFIX), cmd
        if "peer" in cmd:  # the other end of a veth pair is made in a lab namespace too
            assert cmd[cmd.index("netns") + 1].startswith(PREFIX), cmd


def test_no_route_leaves_the_lab() -> None:
    spec = load_lab(None)
    lab_networks = [ipaddress.ip_network(n) for n in spec.networks]
    routes = [cmd for cmd in _all_commands() if "route" in cmd]
    assert routes
    for cmd in routes:
        destination = ipaddress.ip_network(cmd[cmd.index("add") + 1])
        assert destination.prefixlen > 0, cmd  # no default route
        assert any(destination.subnet_of(n) for n in lab_networks), cmd  # type: ignore[arg-type]


def test_interface_names_fit_ifnamsiz() -> None:
    for cmd in _all_commands():
        for keyword in ("add", "name"):
            if "link" in cmd and keyword in cmd:
                assert len(cmd[cmd.index(keyword) + 1]) <= 15, cmd
