"""seaway's per-Service annotations (``seaway.io/...``) and their documented defaults."""

from __future__ import annotations

PREFIX = "seaway.io/"

# Balancing algorithm for this Service's ports; default: the global setting (maglev).
ALGORITHM = "seaway.io/algorithm"
# What hash-based algorithms hash: "5-tuple" (default) or "source-ip".
HASH_ON = "seaway.io/hash-on"
HASH_ON_VALUES = frozenset({"5-tuple", "source-ip"})
# PROXY protocol header sent to the backends: "v1" or "v2"; default none.
PROXY_PROTOCOL = "seaway.io/proxy-protocol"
PROXY_PROTOCOL_VALUES = frozenset({"v1", "v2"})
# "true": the listener expects a PROXY protocol header (v1 or v2) from a load
# balancer in front of seaway; default "false".
ACCEPT_PROXY_PROTOCOL = "seaway.io/accept-proxy-protocol"
BOOLEAN_VALUES = frozenset({"true", "false"})

# MetalLB's annotation asking for specific addresses (comma-separated).
METALLB_LOAD_BALANCER_IPS = "metallb.io/loadBalancerIPs"

KNOWN = frozenset({ALGORITHM, HASH_ON, PROXY_PROTOCOL, ACCEPT_PROXY_PROTOCOL})
