"""Load-balancing algorithms, one module each behind ``Balancer``."""
