"""seaway: a load balancer for Kubernetes Services."""

__version__ = "0.1.0"
