"""All tables. Importing this package registers every model on ``Base.metadata``.

Each module owns the tables of one noun; add new modules to the import list below.
"""

from __future__ import annotations

from updown.db.base import Base
from updown.db.models import cluster, events, files, identities, products, users

__all__ = ["Base", "cluster", "events", "files", "identities", "products", "users"]
