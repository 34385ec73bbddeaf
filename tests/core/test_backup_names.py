"""Archive names: unique even within one second, sortable by time, and read back by `archive_time`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.backup import PREFIX, SUFFIX, TAG_CHARS, archive_name, archive_time

MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)
)


@given(MOMENTS)
def test_a_name_reads_back_as_its_moment_to_the_microsecond(moment: datetime) -> None:
    name = archive_name(moment)
    assert archive_time(name) == moment
    assert len(name) == len(archive_name(moment + timedelta(days=1)))  # fixed width: name order is time order


@given(MOMENTS, MOMENTS)
def test_names_sort_by_time(first: datetime, second: datetime) -> None:
    if first != second:
        assert (archive_name(first) < archive_name(second)) == (first < second)


def test_names_of_the_same_moment_differ() -> None:
    moment = datetime(2026, 11, 27, 15, 5, 1, tzinfo=UTC)
    names = {archive_name(moment) for _ in range(200)}
    assert len(names) == 200
    assert all(archive_time(name) == moment for name in names)


def test_names_written_before_tags_are_still_read() -> None:
    assert archive_time("api-assistant-backup-20261127T150501Z.tar.gz") == datetime(2026, 11, 27, 15, 5, 1, tzinfo=UTC)
    assert archive_time("api-assistant-backup-20261127T150501Z-0123abcd.tar.gz") == datetime(
        2026, 11, 27, 15, 5, 1, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "name",
    [
        "notes.txt",
        "api-assistant-backup-.tar.gz",
        "api-assistant-backup-20261127T150501.123456Z.tar",
        "api-assistant-backup-20261127T150501.123456Z-XYZ.tar.gz",  # not a hex tag
        "api-assistant-backup-20261127T150501.123456Z-0123abcd0.tar.gz",  # tag too long
        "api-assistant-backup-20261127T150501.123456Z-0123ABCD.tar.gz",  # tags are lower case
        "api-assistant-backup-20261327T150501.123456Z-0123abcd.tar.gz",  # month 13
        "api-assistant-backup-20261127T150501.123456Z-0123abcd.tar.gz.part",
        "api-assistant-backup-20261127T150501.123456Z-0123abcd-0123abcd.tar.gz",
        PREFIX + "2" * 300 + SUFFIX,
    ],
)
def test_other_names_are_not_archives(name: str) -> None:
    assert archive_time(name) is None


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=400),
        st.text(alphabet="0123456789TZ.-abcdef", max_size=80).map(lambda s: PREFIX + s + SUFFIX),
        st.text(max_size=10_000).map(lambda s: PREFIX + s + SUFFIX),
    )
)
def test_archive_time_never_fails_on_any_name(name: str) -> None:
    taken = archive_time(name)
    assert taken is None or (taken.tzinfo is UTC and name.startswith(PREFIX))


def test_the_tag_has_its_documented_width() -> None:
    name = archive_name(datetime(2026, 1, 1, tzinfo=UTC))
    assert len(name[len(PREFIX) : -len(SUFFIX)].partition("-")[2]) == TAG_CHARS
