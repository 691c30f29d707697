"""Typed Kubernetes objects, their parsing and validation."""
