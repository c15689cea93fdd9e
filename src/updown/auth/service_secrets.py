"""The service's generated secrets in the ``service_secrets`` table: made once for the whole
cluster (code HMAC key, credentials key, S3 service credentials), sealed like signing keys.

Configured values win and are never stored. A pre-0006 ``<data>/secrets.json`` is imported in
place of fresh values the first time a name is missing, so codes mailed and credentials issued
before the upgrade stay valid.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import inspect, select, update

from updown.auth.sealing import Sealer
from updown.clock import Clock
from updown.db.engine import Database
from updown.db.models.cluster import ServiceSecretRow
from updown.db.upsert import insert_if_absent
from updown.errors import ConfigError

log = logging.getLogger(__name__)


def load_or_create(
    database: Database,
    clock: Clock,
    sealer: Sealer,
    wanted: Mapping[str, Callable[[], str]],
    *,
    import_from: Path | None = None,
) -> dict[str, str]:
    """The stored value of every name in ``wanted``, creating the missing ones: from
    ``import_from`` (an old secrets.json) if it holds them, else ``wanted[name]()``. Processes
    starting together end up with one value per name.

    Raises:
        ConfigError: the schema is not migrated, ``import_from`` is not readable JSON, or a stored
            value does not open with the configured key.
    """
    if not inspect(database.engine).has_table(ServiceSecretRow.__tablename__):
        raise ConfigError("the database has no service_secrets table yet: run `updown migrate`")
    stored = _read(database, sealer, wanted)
    missing = [name for name in wanted if name not in stored]
    legacy = _read_legacy(import_from) if import_from is not None else {}
    if missing:
        now = clock.now()
        with database.session() as s:
            for name in missing:
                value = legacy.get(name) or wanted[name]()
                row = ServiceSecretRow(name=name, value=sealer.seal(value, context=_context(name)), created_at=now)
                # Another process may have stored this name since we read: its value wins.
                if insert_if_absent(s, row, unique="name") and name in legacy:
                    log.info("imported service secret %s from %s into the database", name, import_from)
        stored = _read(database, sealer, wanted)
    differing = sorted(name for name in wanted if name in legacy and legacy[name] != stored[name])
    if differing:
        # This data dir was another installation's: the database's values are the cluster's.
        log.warning("%s holds other values than the database for %s; the database's are used", import_from, differing)
    return {name: stored[name] for name in wanted}


def _context(name: str) -> str:
    return f"service_secret:{name}"


def _read(database: Database, sealer: Sealer, names: Mapping[str, object]) -> dict[str, str]:
    with database.session() as s:
        rows = s.execute(select(ServiceSecretRow).where(ServiceSecretRow.name.in_(list(names)))).scalars().all()
    out = {}
    for row in rows:
        out[row.name] = sealer.open(row.value, context=_context(row.name))
        if sealer.enabled and not Sealer.is_sealed(row.value):
            # Stored before auth.key_encryption_key was set: sealed the first time it is read.
            with database.session() as s:
                s.execute(
                    update(ServiceSecretRow)
                    .where(ServiceSecretRow.name == row.name)
                    .values(value=sealer.seal(out[row.name], context=_context(row.name)))
                )
    return out


def _read_legacy(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(f"{path} is not JSON; fix or remove it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object; fix or remove it")
    return {str(k): v for k, v in data.items() if isinstance(v, str) and v}
