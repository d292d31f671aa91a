"""Learning commands on the gallery indexer queue: verdicts and template edits, typed.

Beside S3's ``uploads/`` notifications and :class:`~oneeye.cloud.removals.RemoveCommand`,
the indexer (:mod:`oneeye.cloud.functions.gallery_indexer`) takes:

* :class:`LearnCommand` ``{"action": "learn", watchlist, person_id, event_id, encoding
  (128 floats: the match event's fused track encoding), kind: positive | negative, by,
  at}`` — the desk confirmed the sighting (a new *sighting* template) or said "Not this
  person" (a *negative* template);
* :class:`RemoveTemplateCommand` ``{"action": "remove_template", watchlist, person_id,
  template_id, by}`` — one template out;
* :class:`ReviewCommand` ``{"action": "review", watchlist, person_id, review_id, decision:
  accept | dismiss, by}`` — a template held for review (a confirmed sighting far from the
  person's templates, or a new photo unlike them) is added, or dropped.

Producer: :class:`oneeye.cloud.backoffice.Backoffice`. Identity of who decided comes from
the dashboard's session (``by``), never from a browser's payload.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oneeye.errors import EventError
from oneeye.gallery.rule import ENCODING_DIM
from oneeye.types import Id, UtcTimestamp, Watchlist

#: A 128-d dlib encoding as it travels in JSON (finite floats; dlib's are within ±1).
Encoding = Annotated[list[Annotated[float, Field(ge=-10, le=10, allow_inf_nan=False)]],
                     Field(min_length=ENCODING_DIM, max_length=ENCODING_DIM)]
#: A template id (:func:`oneeye.gallery.templates.template_id`) or a review id.
TemplateId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
UserName = Annotated[str, Field(min_length=1, max_length=200)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def is_one(cls, body: Any) -> bool:
        """Whether ``body`` (a decoded message) claims to be this command."""
        action = cls.model_fields["action"].default
        return isinstance(body, dict) and body.get("action") == action

    @classmethod
    def parse(cls, body: Any) -> Any:
        """The validated command; :class:`EventError` naming each bad field otherwise."""
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                               for e in exc.errors()[:5])
            raise EventError(f"invalid {cls.model_fields['action'].default} command: "
                             f"{fields}") from exc


class LearnCommand(_Command):
    """A desk verdict to learn from: ``positive`` (Confirm) or ``negative`` (Not this
    person) for ``person_id`` on the sighting ``event_id`` whose fused encoding is
    ``encoding``; ``by`` confirmed it at ``at``."""

    action: Literal["learn"] = "learn"
    watchlist: Watchlist
    person_id: Id
    event_id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
    encoding: Encoding
    kind: Literal["positive", "negative"]
    by: UserName
    at: UtcTimestamp


class RemoveTemplateCommand(_Command):
    """Take template ``template_id`` (positive or negative) from ``person_id``."""

    action: Literal["remove_template"] = "remove_template"
    watchlist: Watchlist
    person_id: Id
    template_id: TemplateId
    by: UserName


class ReviewCommand(_Command):
    """Settle the held template ``review_id`` of ``person_id``: ``accept`` adds it,
    ``dismiss`` drops it."""

    action: Literal["review"] = "review"
    watchlist: Watchlist
    person_id: Id
    review_id: TemplateId
    decision: Literal["accept", "dismiss"]
    by: UserName
