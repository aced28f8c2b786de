"""Seventh pass of the scan's speed (issue #11): the report's cards drawn from the page's start.

`iter_document` starts drawing the picture cards (two threads,
`io._prefetch.Prefetch`) before it makes the tables that come before them.
"""

from __future__ import annotations

import threading
import time

import pytest

from segaudit._sample import make_sample_dataset
from segaudit.cli import run_scan
from segaudit.cli._demo import write_sample_folder
from segaudit.io._prefetch import THREAD_PREFIX, Prefetch
from segaudit.report import _sections

VOID = 255


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    data = make_sample_dataset(n_images=5, height=24, width=32, seed=7, void_border=1)
    return write_sample_folder(tmp_path_factory.mktemp("data"), data)


def _scan(paths, out):
    return run_scan(
        paths["masks"], paths["probs"], out, ignore_index=VOID, from_logits=True, verbose=False
    )


def test_a_failed_card_stops_the_drawing_and_publishes_nothing(folders, tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("report failed")

    monkeypatch.setattr(_sections, "_card", failing)
    out = tmp_path / "o"
    with pytest.raises(RuntimeError, match="report failed"):
        _scan(folders, out)
    assert not out.exists()
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith(THREAD_PREFIX)]


# ------------------------------------------------------------------ Prefetch, started at once


def test_prefetch_starts_before_the_first_next_and_holds_at_most_depth():
    loaded: list[int] = []
    third = threading.Event()

    def load(key: int) -> int:
        loaded.append(key)
        if len(loaded) == 3:
            third.set()
        return key * 10

    with Prefetch(load, range(8), depth=3, workers=2) as items:
        assert third.wait(10)  # no `next` yet
        time.sleep(0.05)
        assert sorted(loaded) == [0, 1, 2]  # the window: no more than `depth`
        assert list(items) == [k * 10 for k in range(8)]
        with pytest.raises(StopIteration):
            next(items)


def test_prefetch_closed_unused_cancels_and_joins():
    gate = threading.Event()
    loaded: list[int] = []

    def load(key: int) -> int:
        gate.wait(10)
        loaded.append(key)
        return key

    items = Prefetch(load, range(10), depth=4, workers=1)
    gate.set()
    items.close()
    assert len(loaded) <= 1  # the one running when closed; the others were cancelled
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]
    with pytest.raises(StopIteration):
        next(items)
    items.close()  # again: nothing to do


def test_prefetch_raises_in_order_then_stops():
    def load(key: int) -> int:
        if key == 2:
            raise KeyError(key)
        return key

    items = Prefetch(load, range(6), depth=3, workers=2)
    assert [next(items), next(items)] == [0, 1]
    with pytest.raises(KeyError):
        next(items)
    with pytest.raises(StopIteration):
        next(items)
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_prefetch_rejects_a_bad_window():
    with pytest.raises(ValueError, match="'depth' and 'workers' must be >= 1"):
        Prefetch(lambda k: k, [1], depth=0)


def test_report_cards_are_drawn_while_the_page_begins(folders, tmp_path, monkeypatch):
    first = threading.Event()
    card = _sections._card

    def drawing(*args, **kwargs):
        first.set()
        return card(*args, **kwargs)

    head = _sections._head

    def waiting(*args, **kwargs):  # the page's first piece: a card is being drawn already
        assert first.wait(10)
        return head(*args, **kwargs)

    monkeypatch.setattr(_sections, "_card", drawing)
    monkeypatch.setattr(_sections, "_head", waiting)
    result = _scan(folders, tmp_path / "o")
    assert first.is_set() and (tmp_path / "o" / "report.html").is_file()
    assert result.files[-1].name == "report.html"
