"""Devices as state: one row per device (last health, online/offline). Figures are upserted
by each ``device_status``; the state is set only by the cloud's transitions
(``dashboard.devices``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select

from dashboard.store.engine import Repository
from dashboard.store.schema import devices
from oneeye.events import DeskEvent

#: The columns of a device row as :meth:`Devices.of_sites` returns it.
_ROW = (devices.c.device_id, devices.c.site_id, devices.c.last_seen, devices.c.fps,
        devices.c.camera_state, devices.c.state, devices.c.health)


class Devices(Repository):
    def seen(self, event: DeskEvent) -> str:
        """A ``device_status`` report: upsert the device's figures (last seen now, fps,
        camera state, health). The state is the cloud's (:meth:`set_state`); a device
        first heard of starts ``online``. Returns the state, ``new`` for a new device.
        Raises ValueError without a ``device_id``."""
        if not event.device_id:
            raise ValueError("a device_status event needs a device_id")
        health = event.health
        statement = self.insert(devices).values(
            device_id=event.device_id, site_id=event.site_id, last_seen=self.now(),
            fps=health.fps if health else None,
            camera_state=health.camera_state if health else None, state="online",
            health=health.to_json() if health else None)
        new = statement.excluded
        statement = statement.on_conflict_do_update(index_elements=["device_id"], set_={
            "site_id": new.site_id, "last_seen": new.last_seen, "fps": new.fps,
            # a report without health keeps the last known camera state
            "camera_state": func.coalesce(new.camera_state, devices.c.camera_state),
            "health": func.coalesce(new.health, devices.c.health)})
        with self.engine.begin() as conn:
            before = conn.execute(select(devices.c.state)
                                  .where(devices.c.device_id == event.device_id)).scalar()
            conn.execute(statement)
        return str(before) if before is not None else "new"

    def set_state(self, event: DeskEvent, state: str) -> bool:
        """Apply a transition the cloud sent (``device_offline`` → ``offline``,
        ``device_online`` → ``online``), creating the row of a device not yet seen here.

        Applied only when the event is newer (``observed_at``, the moment the cloud made
        the transition) than the one that set the current state: SNS keeps no order, so an
        older transition delivered late (a retry) must not undo a newer one. True when
        applied, False for such a late one. Raises ValueError without a ``device_id``."""
        if not event.device_id:
            raise ValueError(f"a {event.kind} event needs a device_id")
        at = event.observed_at   # normalised ISO-8601 UTC (ms, "Z"): ordered as text
        statement = self.insert(devices).values(
            device_id=event.device_id, site_id=event.site_id, last_seen=self.now(),
            state=state, state_at=at)
        statement = statement.on_conflict_do_update(
            index_elements=["device_id"],
            set_={"state": state, "site_id": event.site_id, "state_at": at},
            where=or_(devices.c.state_at.is_(None), devices.c.state_at < at))
        # RETURNING, not rowcount: psycopg reports -1 for an upsert whatever it did
        with self.engine.begin() as conn:
            return conn.execute(statement.returning(devices.c.device_id)).first() is not None

    def of_sites(self, sites: Sequence[str]) -> list[dict[str, Any]]:
        """Rows ``{device_id, site_id, last_seen, fps, camera_state, state, health}`` of
        ``sites``, by device id (``health``: the last ``oneeye.health/1`` JSON)."""
        if not sites:
            return []
        query = (select(*_ROW).where(devices.c.site_id.in_(list(sites)))
                 .order_by(devices.c.device_id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def count_by_site(self) -> dict[str, int]:
        """site id → how many devices report there."""
        query = select(devices.c.site_id, func.count()).group_by(devices.c.site_id)
        with self.engine.connect() as conn:
            return {site: int(n) for site, n in conn.execute(query)}
