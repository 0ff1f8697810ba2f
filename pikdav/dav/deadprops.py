"""Dead properties (PROPPATCH of names WsgiDAV does not know), held in memory within the caps
of :mod:`.limits`.

WsgiDAV's own in-memory manager stores whatever it is given. This one keeps a running count
of the bytes it holds, per resource and in all, and refuses a property that would pass a cap
already in PROPPATCH's dry run, so the 207 names the refused property (507, with the reason)
and nothing of the request is stored. Within one PROPPATCH the properties planned so far
count too (``environ`` carries them from the dry run to the real one).
"""

from __future__ import annotations

import logging
import threading

from wsgidav.prop_man.property_manager import PropertyManager

from . import limits

log = logging.getLogger(__name__)

PLANNED = "pikdav.dead_properties_planned"  # environ key: {(url, name): size}


def property_size(name: str, value: bytes) -> int:
    return len(name) + len(value)


class CappedPropertyManager(PropertyManager):
    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.Lock()  # the count and the store change together
        self._held = 0  # bytes of names and values, in all

    def __repr__(self) -> str:
        return "CappedPropertyManager"

    def _sizes(self, url: str) -> dict[str, int]:
        if not self._loaded:
            self._lazy_open()
        return {n: property_size(n, v) for n, v in self._dict.get(url, {}).items()}

    def held(self) -> int:
        """Bytes of dead properties held, names included."""
        return self._held

    def any_properties(self, urls) -> bool:
        """Whether any of ``urls`` has a dead property."""
        if not self._loaded:
            self._lazy_open()
        return bool(self._dict) and any(self._dict.get(url) for url in urls)

    def write_property(self, norm_url, name, property_value, dry_run=False, environ=None):
        size = property_size(name, property_value)
        planned: dict[tuple[str, str], int] = (
            environ.setdefault(PLANNED, {}) if environ is not None else {}
        )
        with self._guard:
            stored = self._sizes(norm_url)
            others = {n: s for n, s in stored.items() if n != name}
            others.update({n: s for (u, n), s in planned.items() if u == norm_url and n != name})
            limits.check_dead_property(
                size,
                resource_total=sum(others.values()) + size,
                store_total=self._held - stored.get(name, 0) + size,
            )
            if dry_run:
                planned[(norm_url, name)] = size
                return
            super().write_property(norm_url, name, property_value, dry_run=False, environ=environ)
            self._held += size - stored.get(name, 0)

    def remove_property(self, norm_url, name, dry_run=False, environ=None):
        if dry_run:
            return
        with self._guard:
            freed = self._sizes(norm_url).get(name, 0)
            super().remove_property(norm_url, name, dry_run=False, environ=environ)
            self._held -= freed

    def remove_properties(self, norm_url, environ=None):
        with self._guard:
            freed = sum(self._sizes(norm_url).values())
            super().remove_properties(norm_url, environ=environ)
            self._held -= freed

    def copy_properties(self, src_url, dest_url, environ=None):
        with self._guard:
            added = sum(self._sizes(src_url).values())
            replaced = sum(self._sizes(dest_url).values())
            if self._held + added - replaced > limits.DEAD_PROPERTIES_MAX:
                # The copy itself is done; only its dead properties are not kept.
                log.warning("the dead properties of %s were not copied: the store is full", src_url)
                return
            super().copy_properties(src_url, dest_url, environ=environ)
            self._held += added - replaced

    def move_properties(self, src_url, dest_url, with_children, environ=None):
        with self._guard:
            super().move_properties(src_url, dest_url, with_children, environ=environ)
            # A move may overwrite what the destination held: count again (moves are rare).
            self._held = sum(
                property_size(n, v) for props in self._dict.values() for n, v in props.items()
            )
