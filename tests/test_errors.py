"""The error tree says what a caller does: every error is Refused, Unavailable or Misconfigured.

A handler catches a group (``except Refused``: reject and never retry; ``except
Unavailable``: let the platform retry), so a class filed under the wrong group would
retry a poison message forever or drop one that a retry would have delivered.
"""

from __future__ import annotations

import inspect

import pytest

from oneeye import errors
from oneeye.errors import (
    ApiError,
    EnrolmentRejected,
    ImageError,
    Misconfigured,
    OneEyeError,
    PhotoRejected,
    PublishError,
    PublishRejected,
    Refused,
    Unavailable,
)

GROUPS = (Refused, Unavailable, Misconfigured)


def concrete_errors() -> list[type[OneEyeError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, OneEyeError) and c not in (OneEyeError, *GROUPS)]


def test_every_concrete_error_is_under_exactly_one_group() -> None:
    found = concrete_errors()
    assert len(found) >= 20  # the tree is read from the module, not from a list here
    for cls in found:
        groups = [g.__name__ for g in GROUPS if issubclass(cls, g)]
        assert len(groups) == 1, f"{cls.__name__} is under {groups}"


def test_the_groups_are_siblings_under_oneeye_error() -> None:
    for group in GROUPS:
        assert group.__bases__ == (OneEyeError,)
        assert not any(issubclass(group, other) for other in GROUPS if other is not group)


def test_publish_rejected_is_permanent_and_not_a_publish_error() -> None:
    """An ``except PublishError`` written to retry must never retry a refused message."""
    assert issubclass(PublishRejected, Refused)
    assert not issubclass(PublishRejected, PublishError)
    assert issubclass(PublishError, Unavailable)
    with pytest.raises(Refused):
        try:
            raise PublishRejected("not authorised")
        except PublishError:  # pragma: no cover - the bug this test guards against
            pytest.fail("a retrying handler caught a permanent refusal")


@pytest.mark.parametrize(("name", "group"), [
    ("ImageError", Refused), ("EnrolmentRejected", Refused), ("PhotoRejected", Refused),
    ("EventError", Refused), ("SignatureError", Refused), ("GalleryError", Refused),
    ("PolicyError", Refused), ("ApiError", Refused), ("CustomerNotFound", Refused),
    ("NotFound", Refused), ("ConditionFailed", Refused), ("AlreadyExists", Refused),
    ("NotifyError", Unavailable), ("CustomerApiUnavailable", Unavailable),
    ("InProgress", Unavailable), ("Abandoned", Unavailable),
    ("ConfigError", Misconfigured), ("BrokerError", Misconfigured),
    ("SourceError", Misconfigured),
])
def test_each_error_sits_in_the_group_its_raise_sites_mean(name: str,
                                                            group: type[OneEyeError]) -> None:
    assert issubclass(getattr(errors, name), group)


def test_the_tree_in_the_docstring_names_every_class() -> None:
    doc = errors.__doc__ or ""
    for cls in (*concrete_errors(), *GROUPS):
        assert f" {cls.__name__} " in doc or f"── {cls.__name__}\n" in doc, cls.__name__


def test_every_refusal_carries_a_machine_reason() -> None:
    assert ImageError("bad.jpg: truncated").reason == "unreadable"
    assert ImageError("big.jpg", reason="too_large").reason == "too_large"
    assert EnrolmentRejected("no_face", "no face found").reason == "no_face"
    assert str(EnrolmentRejected("no_face", "no face found")) == "no face found"
    assert PhotoRejected("too_large", "over 10 MB").reason == "too_large"
    assert ApiError(404, "unknown_case", "no such case").reason == "unknown_case"
    assert errors.EventError("bad schema").reason == "refused"
