"""One exception tree for OneEye, grouped by what the caller does with the error.

Every error OneEye raises on purpose derives from :class:`OneEyeError`, so an entry
point can catch one type, print its message and exit cleanly. Below it, three groups
say what a handler should do (httpx groups its exceptions the same way, by reaction
rather than by module); a handler names a group, not a list of concrete classes:

* :class:`Refused` — permanent: this input (a photo, a message, a request, a file)
  will never be accepted as it is. Reject it, log it, count it, and never retry.
* :class:`Unavailable` — transient: something we depend on did not answer or is
  busy. Raise it so the platform retries (Lambda's async retries, the SQS
  redelivery, the outbox's backoff, the local rules router); nothing is dropped.
* :class:`Misconfigured` — the settings or the command line are wrong. Stop and
  name the key; a message in flight is neither rejected nor lost (in a Lambda it
  is retried and finally dead-lettered until the settings are fixed).

::

    OneEyeError
    ├── Refused                     permanent: reject, log, never retry
    │   ├── ImageError              unreadable / corrupt / too large image (.reason)
    │   ├── EnrolmentRejected       readable photo not fit to enrol (.reason)
    │   ├── PhotoRejected           photo cannot be uploaded as it is (.reason)
    │   ├── EventError              message fails its schema
    │   ├── SignatureError          SNS message or gallery manifest not authentic
    │   ├── GalleryError            gallery file / id / rule invalid, corrupt or tampered
    │   ├── ContactError            a case contact breaks oneeye.contacts.RULE
    │   ├── PublishRejected         broker or Greengrass refused a message for good
    │   ├── PolicyError             browser POST upload outside its signed policy
    │   ├── ApiError                the API answers this request with .status, .code
    │   ├── CustomerNotFound        the customer API answered 404
    │   ├── NameTaken               a dashboard user of that name exists (no upsert)
    │   ├── NotAllowed              outside the dashboard user's tenancy or role
    │   └── AwsError                AWS's definite answer (.code); same call, same answer
    │       ├── NotFound
    │       ├── ConditionFailed
    │       └── AlreadyExists
    ├── Unavailable                 transient: raise so the platform retries
    │   ├── PublishError            message not acknowledged (no connection, timeout)
    │   ├── NotifyError             the gallery update could not be published
    │   ├── CustomerApiUnavailable  customer API unreachable after retries
    │   ├── InProgress              another invocation holds the idempotency claim
    │   └── Abandoned               local rule given up at shutdown; stays in the inbox
    └── Misconfigured               settings or usage wrong: stop and name the key
        ├── ConfigError             invalid settings; the message names the key path
        ├── BrokerError             embedded MQTT broker cannot start (port taken …)
        └── SourceError             a video source (file, folder) cannot be opened

Programming errors stay ordinary Python exceptions and are allowed to crash tests.
``PublishRejected`` is deliberately not a ``PublishError``: an ``except PublishError``
written to retry must never retry a message the broker refused for good.
"""

from __future__ import annotations

from typing import Any


class OneEyeError(Exception):
    """Base class of every error OneEye raises on purpose."""


# --- the three groups ------------------------------------------------------------------


class Refused(OneEyeError):
    """Permanent: this input is refused as it is; reject, log and never retry.

    ``reason`` is a short machine-readable code (what status documents and tests
    compare) beside the message for people; classes without finer codes use
    ``"refused"``.
    """

    reason: str = "refused"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class Unavailable(OneEyeError):
    """Transient: a dependency did not answer or is busy; raise so the platform retries."""


class Misconfigured(OneEyeError):
    """The settings or the command line are wrong: stop and name what to fix."""


# --- Refused ---------------------------------------------------------------------------


class ImageError(Refused):
    """An image could not be used: unreadable, corrupt, truncated, unsupported or too large.

    ``reason`` is a short machine-readable code (``unreadable``, ``empty``, ``too_large``,
    ``not_an_image``, ``unsupported_format``, ``unsupported_mode``, ``corrupt``; see
    :func:`oneeye.images.load_image`); the message is for people and names the file.
    """

    reason = "unreadable"


class EnrolmentRejected(Refused):
    """A photo was readable but is not fit to enrol (no face, several faces, too small, blurred).

    Raised as ``EnrolmentRejected(reason, message)``, the status documents' order.
    ``reason``: ``no_face``, ``several_faces``, ``face_too_small``, ``too_blurred``,
    ``too_dark`` (dim and no detail left after normalising its contrast), ``unreadable``,
    ``too_large``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


class PhotoRejected(EnrolmentRejected):
    """A photo cannot be uploaded as it is (unreadable, not an image, too large).

    Raised as ``PhotoRejected(reason, message)``; ``reason`` is the same code the
    upload status uses. A kind of enrolment rejection: it is found before the upload
    rather than by the indexer after it.
    """


class ContactError(Refused, ValueError):
    """A case contact breaks :data:`oneeye.contacts.RULE`; the message names the entry and why."""


class EventError(Refused):
    """A message does not validate against its OneEye schema (or names an unknown one)."""


class SignatureError(Refused):
    """An SNS message or a gallery manifest failed signature or origin verification."""


class GalleryError(Refused):
    """A gallery file is missing, corrupt, tampered with or inconsistent, or a person id,
    watchlist or decision rule given for one is invalid."""


class PublishRejected(Refused):
    """The broker or Greengrass refused a message for good (not authorised, too large):
    retrying cannot help, so the outbox sets it aside and counts it."""


class PolicyError(Refused):
    """A browser POST upload is not allowed by its signed policy (the local stack's S3 check;
    the message is S3's kind of reason)."""


class ApiError(Refused):
    """A request the API answers with an error and does not retry: ``status`` (4xx; 429
    when throttled; 500/503 for what the caller cannot fix), ``code`` for machines,
    message for people."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None, details: Any = None) -> None:
        super().__init__(message, reason=code)
        self.status = status
        self.code = code
        self.headers = headers or {}
        self.details = details


class CustomerNotFound(Refused):
    """The customer API answered 404 for this id."""


class AwsError(Refused):
    """An AWS answer that callers act on, mapped from botocore's ``ClientError`` at the
    boundary (:func:`oneeye.aws.errors`). ``code`` is AWS's error code. Only definite
    answers are mapped (the same call gets the same answer); throttling and the like stay
    botocore's and are retried by the platform."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, reason=code)
        self.code = code


class NotFound(AwsError):
    """The object, key, table or resource does not exist (S3 404, ``NoSuchKey`` …)."""


class ConditionFailed(AwsError):
    """A conditional write's condition was false (``ConditionalCheckFailedException``)."""


class AlreadyExists(AwsError):
    """A create found the resource already there (``BucketAlreadyOwnedByYou`` …)."""


class NameTaken(Refused):
    """A dashboard user with this name already exists: creating never replaces one."""

    reason = "name_taken"


class NotAllowed(Refused):
    """The acting dashboard user may not do this: outside their tenancy, or not their
    role's (``dashboard.tenancy``)."""

    reason = "not_allowed"


# --- Unavailable -----------------------------------------------------------------------


class PublishError(Unavailable):
    """A message was not acknowledged (no connection, timeout, broker error); retry later."""


class NotifyError(Unavailable):
    """The gallery update could not be published (broker unreachable, no PUBACK)."""


class CustomerApiUnavailable(Unavailable):
    """The customer API could not be reached or gave no usable answer after retries."""


class InProgress(Unavailable):
    """Another invocation holds this event's idempotency claim and has not finished.

    Not a duplicate to drop: that invocation may have died mid-way. Raised so the
    platform retries (Lambda's async retries, the local rules router); once the
    claim's lease has passed a retry gets the claim and does the work.
    """


class Abandoned(Unavailable):
    """A local rule invocation given up because its router is closing: its message is not
    done, so it stays in the rules inbox for the next start."""


# --- Misconfigured ---------------------------------------------------------------------


class ConfigError(Misconfigured):
    """Settings are invalid; the message names the key path."""


class BrokerError(Misconfigured):
    """The embedded MQTT broker could not start (port taken, bad address, no mosquitto)
    or stop."""


class SourceError(Misconfigured):
    """A video source (camera, stream, file, folder) cannot be opened or read."""
