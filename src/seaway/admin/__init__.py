"""seaway's admin API: a read-only JSON state, health and readiness, and ``seaway status``."""
