"""The S3 backend dates a write by the store's clock, not ours."""

from __future__ import annotations

import time

from updown.storage.s3 import _stored_at


def test_last_modified_of_the_answer_wins() -> None:
    answer = {
        "ResponseMetadata": {
            "HTTPHeaders": {"last-modified": "Wed, 21 Oct 2015 07:28:00 GMT", "date": "Thu, 22 Oct 2015 07:28:00 GMT"}
        }
    }
    assert _stored_at(answer) == 1445412480.0


def test_date_of_the_answer_when_there_is_no_last_modified() -> None:
    answer = {"ResponseMetadata": {"HTTPHeaders": {"date": "Wed, 21 Oct 2015 07:28:00 GMT"}}}
    assert _stored_at(answer) == 1445412480.0


def test_an_unreadable_date_falls_through_to_the_next_then_to_our_clock() -> None:
    assert (
        _stored_at(
            {"ResponseMetadata": {"HTTPHeaders": {"last-modified": "soon", "date": "Wed, 21 Oct 2015 07:28:00 GMT"}}}
        )
        == 1445412480.0
    )
    before = time.time()
    assert before <= _stored_at({"ResponseMetadata": {"HTTPHeaders": {"date": "not a date"}}}) <= time.time()
    assert before <= _stored_at({}) <= time.time()
