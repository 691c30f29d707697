"""What a test backend says about itself: its name, health and readiness."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class BackendState:
    """Mutable state of one backend (owned by its BackendServer, switched over HTTP)."""

    name: str
    healthy: bool = True
    ready_flag: bool = True
    # Set on SIGTERM while the backend keeps serving for its shutdown delay.
    terminating: bool = False

    @property
    def ready(self) -> bool:
        """Ready unless switched off or terminating (as a Pod's readiness probe fails then)."""
        return self.ready_flag and not self.terminating
