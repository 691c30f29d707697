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

# What the backends of this Service are: "pods" (default: the EndpointSlice
# endpoints, container-native) or "nodes" (every eligible Node's InternalIP at the
# port's nodePort, as cloud load balancers do).
BACKENDS = "seaway.io/backends"
BACKENDS_VALUES = frozenset({"pods", "nodes"})
# Active health check of this Service's backends (defaults: SeawayConfig
# spec.healthCheck). "none" turns checks off; "http" or "tcp" turns them on.
HEALTH_CHECK_PROTOCOL = "seaway.io/health-check-protocol"
HEALTH_CHECK_PROTOCOL_VALUES = frozenset({"http", "tcp", "none"})
HEALTH_CHECK_PATH = "seaway.io/health-check-path"
# Port probed; default: the backend's port (pods), the kube-proxy health port (nodes).
HEALTH_CHECK_PORT = "seaway.io/health-check-port"
# Status codes that pass an HTTP check: "200", "200-399", "200,204,300-399".
HEALTH_CHECK_EXPECTED_STATUSES = "seaway.io/health-check-expected-statuses"
HEALTH_CHECK_INTERVAL = "seaway.io/health-check-interval"  # seconds
HEALTH_CHECK_TIMEOUT = "seaway.io/health-check-timeout"  # seconds
HEALTH_CHECK_HEALTHY_THRESHOLD = "seaway.io/health-check-healthy-threshold"
HEALTH_CHECK_UNHEALTHY_THRESHOLD = "seaway.io/health-check-unhealthy-threshold"
HEALTH_CHECK_SECONDS = frozenset({HEALTH_CHECK_INTERVAL, HEALTH_CHECK_TIMEOUT})
HEALTH_CHECK_COUNTS = frozenset({HEALTH_CHECK_HEALTHY_THRESHOLD, HEALTH_CHECK_UNHEALTHY_THRESHOLD})
HEALTH_CHECK = frozenset(
    {
        HEALTH_CHECK_PROTOCOL,
        HEALTH_CHECK_PATH,
        HEALTH_CHECK_PORT,
        HEALTH_CHECK_EXPECTED_STATUSES,
        *HEALTH_CHECK_SECONDS,
        *HEALTH_CHECK_COUNTS,
    }
)

# The protocol the L7 proxy speaks to this Service's backends: "h2c" (HTTP/2 over
# cleartext, prior knowledge) or "http1"; default: from the port's appProtocol
# (kubernetes.io/h2c or grpc mean h2c), else http1.
UPSTREAM_PROTOCOL = "seaway.io/upstream-protocol"
UPSTREAM_PROTOCOL_VALUES = frozenset({"h2c", "http1"})

# Slow start (Envoy's formula) for round-robin and least-request: a new backend's
# weight ramps up over this many seconds; default 0 (off).
SLOW_START_WINDOW = "seaway.io/slow-start-window"
SLOW_START_WINDOW_MAX = 3600.0

# The nftables data plane (``seaway run --dataplane nftables``, docs/kernel.md):
# how the kernel picks a backend for a new flow: "maglev" (default), "modulo" or "random".
KERNEL_SELECTION = "seaway.io/kernel-selection"
KERNEL_SELECTION_VALUES = frozenset({"maglev", "modulo", "random"})
# How packets reach the backend: "nat" (default: DNAT and SNAT on the load balancer) or
# "dsr" (direct server return: routed to the node, which answers the client directly).
FORWARDING = "seaway.io/forwarding"
FORWARDING_VALUES = frozenset({"nat", "dsr"})
# Seconds a flow may stay idle before the load balancer forgets it (default 350 for TCP).
FLOW_IDLE_TIMEOUT = "seaway.io/flow-idle-timeout"
# Maglev table size in the kernel (a prime); default: chosen from the backend count.
KERNEL_TABLE_SIZE = "seaway.io/kernel-table-size"
# "true": count new flows per backend in the kernel too (default "false": per listener
# only). Each backend then has a named nft counter, and nft reads every named object of
# the table before each transaction: at 10,000 Services of 10 backends an endpoint
# change took 2.5 s instead of 0.1 s (docs/kernel.md, "Counters").
KERNEL_BACKEND_COUNTERS = "seaway.io/kernel-backend-counters"
KERNEL = frozenset(
    {KERNEL_SELECTION, FORWARDING, FLOW_IDLE_TIMEOUT, KERNEL_TABLE_SIZE, KERNEL_BACKEND_COUNTERS}
)

KNOWN = frozenset(
    {
        *KERNEL,
        ALGORITHM,
        SLOW_START_WINDOW,
        HASH_ON,
        PROXY_PROTOCOL,
        ACCEPT_PROXY_PROTOCOL,
        BACKENDS,
        UPSTREAM_PROTOCOL,
        *HEALTH_CHECK,
    }
)


def parse_slow_start_window(value: str) -> float | None:
    """The slow-start window in seconds, or None when the annotation value is invalid."""
    try:
        window = float(value)
    except ValueError:
        return None
    return window if 0.0 <= window <= SLOW_START_WINDOW_MAX else None
