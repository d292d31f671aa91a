"""The gallery indexer queue's typed commands: one base, four commands.

Beside S3's ``uploads/`` notifications, the indexer (:mod:`oneeye.cloud.functions.
gallery_indexer`) takes these JSON messages on its SQS queue:

* :class:`RemoveCommand` ``{"action": "remove", watchlist, person_id}`` — a person out
  (closing a case: :func:`oneeye.cloud.functions.cases.close`; removing a customer:
  :class:`oneeye.cloud.backoffice.Backoffice`);
* :class:`LearnCommand` ``{"action": "learn", watchlist, person_id, event_id, encoding
  (128 floats: the match event's fused track encoding), kind: positive | negative, by,
  at}`` — the desk confirmed the sighting (a new *sighting* template) or said "Not this
  person" (a *negative* template);
* :class:`RemoveTemplateCommand` ``{"action": "remove_template", watchlist, person_id,
  template_id, by}`` — one template out;
* :class:`ReviewCommand` ``{"action": "review", watchlist, person_id, review_id, decision:
  accept | dismiss, by}`` — a template held for review (a confirmed sighting far from the
  person's templates, or a new photo unlike them) is added, or dropped.

Every command also carries ``command_id`` (a UUIDv7 made when the producer builds it): the
indexer claims it in the state table's ``event`` namespace, so an SQS redelivery is done
once — a redelivered ``remove_template`` never removes the same template again after it
was re-added. A message without one (queued before commands had ids) is claimed by its SQS
message id instead. Unknown fields are ignored, so messages already waiting on a queue
survive a deploy.

Producers: :class:`oneeye.cloud.backoffice.Backoffice` and
:func:`oneeye.cloud.functions.cases.close`. Who decided (``by``) comes from the dashboard's
session, never from a browser's payload.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oneeye.errors import EventError
from oneeye.gallery.rule import ENCODING_DIM
from oneeye.ids import new_id
from oneeye.types import Id, UtcTimestamp, Watchlist

#: A 128-d dlib encoding as it travels in JSON (finite floats; dlib's are within ±1).
Encoding = Annotated[list[Annotated[float, Field(ge=-10, le=10, allow_inf_nan=False)]],
                     Field(min_length=ENCODING_DIM, max_length=ENCODING_DIM)]
#: A template id (:func:`oneeye.gallery.templates.template_id`) or a review id.
TemplateId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
UserName = Annotated[str, Field(min_length=1, max_length=200)]
#: A command's own id (a UUIDv7 from :func:`oneeye.ids.new_id`; any 8–64 safe characters).
CommandId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


class IndexerCommand(BaseModel):
    """The base of every command on the indexer queue: ``action`` names the command,
    ``command_id`` makes its redelivery recognisable."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: str
    watchlist: Watchlist
    person_id: Id
    command_id: CommandId = Field(default_factory=new_id)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def is_one(cls, body: Any) -> bool:
        """Whether ``body`` (a decoded message) claims to be this command."""
        return isinstance(body, dict) and body.get("action") == cls.model_fields["action"].default

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


class RemoveCommand(IndexerCommand):
    """Remove ``person_id`` (a case or customer id) from ``watchlist``'s gallery."""

    action: Literal["remove"] = "remove"


class LearnCommand(IndexerCommand):
    """A desk verdict to learn from: ``positive`` (Confirm) or ``negative`` (Not this
    person) for ``person_id`` on the sighting ``event_id`` whose fused encoding is
    ``encoding``; ``by`` confirmed it at ``at``."""

    action: Literal["learn"] = "learn"
    event_id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
    encoding: Encoding
    kind: Literal["positive", "negative"]
    by: UserName
    at: UtcTimestamp


class RemoveTemplateCommand(IndexerCommand):
    """Take template ``template_id`` (positive or negative) from ``person_id``."""

    action: Literal["remove_template"] = "remove_template"
    template_id: TemplateId
    by: UserName


class ReviewCommand(IndexerCommand):
    """Settle the held template ``review_id`` of ``person_id``: ``accept`` adds it,
    ``dismiss`` drops it."""

    action: Literal["review"] = "review"
    review_id: TemplateId
    decision: Literal["accept", "dismiss"]
    by: UserName


#: Every command the indexer takes, in the order it tries them.
COMMANDS: tuple[type[IndexerCommand], ...] = (RemoveCommand, LearnCommand,
                                              RemoveTemplateCommand, ReviewCommand)


def parse_command(body: Any) -> IndexerCommand | None:
    """The command ``body`` claims to be, validated; None when it claims none (an S3
    notification); :class:`EventError` naming each bad field when it is malformed."""
    for cls in COMMANDS:
        if cls.is_one(body):
            command: IndexerCommand = cls.parse(body)
            return command
    return None
