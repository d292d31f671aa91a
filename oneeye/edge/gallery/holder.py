"""The edge's current :class:`~oneeye.gallery.Matcher`, swapped atomically by the gallery sync."""

from __future__ import annotations

import logging
import threading

from oneeye.errors import GalleryError
from oneeye.gallery import Gallery, Matcher

log = logging.getLogger(__name__)


class GalleryHolder:
    """The edge's current :class:`Matcher`, swappable atomically while frames flow.

    Readers call :meth:`current` once per frame and keep that snapshot; a swap
    never blocks or tears a frame in progress.
    """

    def __init__(self, matcher: Matcher | None = None) -> None:
        self._matcher = matcher or Matcher()
        self._lock = threading.Lock()

    def current(self) -> Matcher:
        return self._matcher

    def swap(self, gallery: Gallery) -> None:
        with self._lock:
            old = self._matcher.galleries.get(gallery.watchlist)
            if old is not None and gallery.version < old.version:
                raise GalleryError(
                    f"refusing to replace {gallery.watchlist} v{old.version} with older"
                    f" v{gallery.version}"
                )
            self._matcher = self._matcher.replaced(gallery)
        log.info("gallery %s v%d in use (%d encodings)", gallery.watchlist, gallery.version,
                 len(gallery))
