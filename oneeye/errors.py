"""One exception tree for OneEye.

Every error a user can cause (a bad photo, a malformed event, a wrong setting)
derives from :class:`OneEyeError`, so entry points can catch one type, print its
message and carry on or exit cleanly. Programming errors stay ordinary Python
exceptions and are allowed to crash tests.
"""

from __future__ import annotations

from typing import Any


class OneEyeError(Exception):
    """Base class of every error OneEye raises on purpose."""


class Refusal(OneEyeError):
    """Input refused for a stated ``reason``: a short machine-readable code (what status
    documents and tests compare) beside the message for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ImageError(OneEyeError):
    """An image could not be used: unreadable, corrupt, truncated, unsupported or too large.

    ``reason`` is a short machine-readable code (``unreadable``, ``empty``, ``too_large``,
    ``not_an_image``, ``unsupported_format``, ``unsupported_mode``, ``corrupt``; see
    :func:`oneeye.images.load_image`); the message is for people and names the file.
    """

    def __init__(self, message: str, *, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


class EnrolmentRejected(Refusal):
    """A photo was readable but is not fit to enrol (no face, several faces, too small, blurred).

    ``reason``: ``no_face``, ``several_faces``, ``face_too_small``, ``too_blurred``,
    ``too_dark`` (dim and no detail left after normalising its contrast), ``unreadable``.
    """


class GalleryError(OneEyeError):
    """A gallery file is missing, corrupt, tampered with or inconsistent."""


class EventError(OneEyeError):
    """A message does not validate against its OneEye schema (or names an unknown one)."""


class ConfigError(OneEyeError):
    """Settings are invalid; the message names the key path."""


class SignatureError(OneEyeError):
    """An SNS message failed signature or origin verification."""


class PublishError(OneEyeError):
    """A message was not acknowledged (no connection, timeout, broker error); retry later."""


class PublishRejected(PublishError):
    """The broker or Greengrass refused a message for good (not authorised, too large):
    retrying cannot help, so the outbox sets it aside and counts it."""


class BrokerError(OneEyeError):
    """The embedded MQTT broker could not start (port taken, bad address) or stop."""


class SourceError(OneEyeError):
    """A video source (camera, stream, file, folder) cannot be opened or read."""


class AnnUnavailable(GalleryError):
    """faiss is not installed, so no ANN index can be built."""


class PhotoRejected(Refusal):
    """A photo cannot be uploaded as it is (unreadable, not an image, too large).

    ``reason`` is the same code the upload status uses.
    """


# --- the cloud -------------------------------------------------------------------------


class ApiError(OneEyeError):
    """A request the API refuses: ``status`` (4xx), ``code`` for machines, message for people."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}
        self.details = details


class NotifyError(OneEyeError):
    """The gallery update could not be published."""


class CustomerNotFound(OneEyeError):
    """The customer API answered 404 for this id."""


class CustomerApiUnavailable(OneEyeError):
    """The customer API could not be reached or gave no usable answer after retries."""


class AwsError(OneEyeError):
    """An AWS answer that callers act on, mapped from botocore's ``ClientError`` at the
    boundary (:func:`oneeye.aws.errors`). ``code`` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotFound(AwsError):
    """The object, key, table or resource does not exist (S3 404, ``NoSuchKey`` …)."""


class ConditionFailed(AwsError):
    """A conditional write's condition was false (``ConditionalCheckFailedException``)."""


class AlreadyExists(AwsError):
    """A create found the resource already there (``BucketAlreadyOwnedByYou`` …)."""


class InProgress(OneEyeError):
    """Another invocation holds this event's idempotency claim and has not finished.

    Not a duplicate to drop: that invocation may have died mid-way. Raised so the
    platform retries (Lambda's async retries, the local rules router); once the
    claim's lease has passed a retry gets the claim and does the work.
    """


class Abandoned(OneEyeError):
    """A local rule invocation given up because its router is closing: its message is not
    done, so it stays in the rules inbox for the next start."""


class PolicyError(OneEyeError):
    """A browser POST upload is not allowed by its signed policy (the local stack's S3 check;
    the message is S3's kind of reason)."""
