"""Configuration errors that name the file, the object and the field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem found in the manifests.

    ``source`` is ``path`` or ``path#N`` (N-th YAML document, from 1); ``obj`` is
    ``Kind namespace/name`` when the object could be identified; ``field`` is a
    JSON-path-like location such as ``spec.ports[1].port``.
    """

    source: str
    obj: str
    field: str
    message: str

    def __str__(self) -> str:
        where = self.source or "<input>"
        what = f" {self.obj}" if self.obj else ""
        at = f" {self.field}:" if self.field else ""
        return f"{where}:{what}{at} {self.message}"


class InvalidConfiguration(Exception):
    """Raised when a set of manifests cannot become a ClusterState."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
