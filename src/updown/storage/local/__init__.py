"""The local-disk backend: `LocalBackend` (``backend.py``), its hash-beside-write ring (``ring.py``),
temp files (``spool.py``), the background unlinker (``reaper.py``) and the multipart part store
(``parts.py``)."""

from updown.storage.local.backend import META, LocalBackend

__all__ = ["META", "LocalBackend"]
