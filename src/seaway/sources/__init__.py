"""Where ClusterState snapshots come from: manifest files (watched), later the API."""

from __future__ import annotations

from seaway.sources.files import FileSource, load_paths, validate_paths

__all__ = ["FileSource", "load_paths", "validate_paths"]
