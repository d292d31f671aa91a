"""Galleries: who we look for, how we decide, and how a gallery travels.

* :mod:`~oneeye.gallery.rule` — the decision rule, per-watchlist overrides, track fusion.
* :mod:`~oneeye.gallery.index` — :class:`Gallery` (one watchlist's encodings) and
  :class:`Matcher` (several watchlists, exact search).
* :mod:`~oneeye.gallery.files` — ``.npz`` + sha256 manifest, atomic save, verified load.
* :mod:`~oneeye.gallery.enrol` — photos → gallery with quality checks.

The edge's swappable holder lives in :mod:`oneeye.edge.gallery.holder`.
"""

from oneeye.gallery.enrol import (
    EnrolledPhoto,
    EnrolmentPolicy,
    encode_enrolment_photo,
    enrol,
    enrol_photo,
    policy_for,
)
from oneeye.gallery.files import MANIFEST_SCHEMA, from_bytes, load, manifest_for, save, to_bytes
from oneeye.gallery.index import Gallery, Matcher, check_person_id, check_watchlist
from oneeye.gallery.rule import (
    DEFAULT_RULES,
    DecisionRule,
    Match,
    effective_rule,
    fuse,
)

# What the rest of OneEye uses (edge, cloud, commands, bench). Everything else is
# imported from its own module (oneeye.gallery.rule, .files, .enrol, .index), tests too:
# a name is re-exported here for a caller, never for a test alone.
__all__ = [
    "DEFAULT_RULES", "MANIFEST_SCHEMA", "DecisionRule", "EnrolledPhoto", "EnrolmentPolicy",
    "Gallery", "Match", "Matcher", "check_person_id", "check_watchlist", "effective_rule",
    "encode_enrolment_photo", "enrol", "enrol_photo", "from_bytes", "fuse", "load",
    "manifest_for", "policy_for", "save",
    "to_bytes",
]
