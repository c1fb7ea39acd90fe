"""Exceptions raised by the tensorc runtime."""

from __future__ import annotations

__all__ = ["ArtifactError"]


class ArtifactError(Exception):
    """An artifact cannot be loaded.

    Raised for a file that is not a tensorc artifact, a corrupted one (including an invalid
    manifest), one built by an incompatible format version, or one that needs CPU features
    this machine lacks.
    """
