"""The set-up check: shifted class ids and the like give a SetupWarning, clean data none."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import segaudit
from segaudit.engine._setup import MAX_ISSUE_FRACTION, MIN_AGREEMENT, setup_problems

K = 5
VOID = 255


def _clean(seed: int = 0, n: int = 4, h: int = 16, w: int = 16):
    """A confident model and labels with 3% errors: a sound set-up."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K, size=(n, h, w))
    logits = rng.normal(size=(n, K, h, w)) + 6.0 * np.moveaxis(np.eye(K)[truth], -1, 1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    labels = truth.copy()
    flip = rng.random(truth.shape) < 0.03
    labels[flip] = (truth[flip] + 1) % K
    labels[rng.random(truth.shape) < 0.1] = VOID
    return labels, probs


def _shifted(seed: int = 0):
    """Class ids off by one, as ADE20K masks (0 = 'other') read without reduce-zero-label."""
    labels, probs = _clean(seed)
    valid = labels != VOID
    return np.where(valid, (labels + 1) % K, VOID), probs


def _agreement(labels, probs) -> float:
    valid = labels != VOID
    return float((probs.argmax(axis=1) == labels)[valid].mean())


# ------------------------------------------------------------------ the rule itself


def test_thresholds_are_the_documented_constants() -> None:
    assert MIN_AGREEMENT == 0.5
    assert MAX_ISSUE_FRACTION == 0.3


@pytest.mark.parametrize(
    ("labelled", "disagreeing", "issues", "figures"),
    [
        (100, 50, 30, []),  # exactly at both limits: sound
        (100, 51, 0, ["49.0%"]),
        (100, 10, 31, ["31.0%"]),
        (1000, 700, 400, ["30.0%", "40.0%"]),
        (0, 0, 0, []),  # nothing labelled: nothing to judge
    ],
)
def test_setup_problems_rule(labelled, disagreeing, issues, figures) -> None:
    messages = setup_problems(labelled, disagreeing, issues)
    assert len(messages) == len(figures)
    for message, figure in zip(messages, figures, strict=True):
        assert figure in message
        assert f"of the {labelled} labelled pixels" in message
        assert "class ids shifted" in message and "from_logits=True" in message
        assert "label map" in message and "not trained on these classes" in message


# ------------------------------------------------------------------ clean data: silent


def test_clean_data_gives_no_warning() -> None:
    labels, probs = _clean()
    assert _agreement(labels, probs) > 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error", segaudit.SetupWarning)
        mask = segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
        assert mask.any()
        audit = segaudit.LabelAudit(K, ignore_index=VOID)
        audit.update(labels[:2], probs[:2])
        audit.update(labels[2:], probs[2:])
        np.testing.assert_array_equal(audit.find_label_issues(), mask)
        assert len(list(audit.iter_images())) == labels.shape[0]
        assert audit.setup_warnings() == []


# ------------------------------------------------------------------ shifted ids: warned


def _setup_records(record) -> list[warnings.WarningMessage]:
    return [w for w in record if issubclass(w.category, segaudit.SetupWarning)]


def test_shifted_labels_warn_from_find_label_issues_at_the_callers_line() -> None:
    labels, probs = _shifted()
    agreement = _agreement(labels, probs)
    assert agreement < 0.1
    with pytest.warns(segaudit.SetupWarning) as record:
        segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
    found = _setup_records(record)
    messages = [str(w.message) for w in found]
    assert len(messages) == len(set(messages)) >= 1  # each problem once per call
    assert f"agrees with the label on only {agreement:.1%}" in messages[0]
    assert f"of the {int((labels != VOID).sum())} labelled pixels" in messages[0]
    assert "class ids shifted" in messages[0] and "ADE20K" in messages[0]
    assert [w.filename for w in found] == [__file__] * len(found)
    assert issubclass(segaudit.SetupWarning, UserWarning)


def test_shifted_labels_warn_with_out(tmp_path) -> None:
    labels, probs = _shifted(1)
    with pytest.warns(segaudit.SetupWarning) as record:
        segaudit.find_label_issues(
            labels, probs, ignore_index=VOID, verbose=False, out=tmp_path / "m.npy"
        )
    found = _setup_records(record)
    assert "agrees with the label on only" in str(found[0].message)
    assert {w.filename for w in found} == {__file__}


def test_shifted_labels_warn_from_label_audit() -> None:
    labels, probs = _shifted(2)
    agreement = _agreement(labels, probs)
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    with warnings.catch_warnings():
        warnings.simplefilter("error", segaudit.SetupWarning)
        audit.update(labels[:3], probs[:3])  # feeding never warns
        audit.update(labels[3:], probs[3:])
        _ = audit.thresholds, audit.num_issues  # nor do the plain properties
    messages = audit.setup_warnings()
    assert messages and f"{agreement:.1%}" in messages[0]
    assert audit.setup_warnings() is not audit.setup_warnings()  # a fresh list each time
    with pytest.warns(segaudit.SetupWarning) as record:
        audit.find_label_issues()
    assert [str(w.message) for w in _setup_records(record)] == messages
    assert {w.filename for w in _setup_records(record)} == {__file__}
    with pytest.warns(segaudit.SetupWarning) as record:
        images = list(audit.iter_images())
    assert len(images) == labels.shape[0]
    assert [str(w.message) for w in _setup_records(record)] == messages
    assert {w.filename for w in _setup_records(record)} == {__file__}


def test_many_issues_but_fair_agreement_warns_about_the_issue_fraction() -> None:
    """40% of the labels moved to another class: agreement 60%, but T over 30%."""
    labels, probs = _clean(3, n=6)
    rng = np.random.default_rng(3)
    valid = labels != VOID
    move = valid & (rng.random(labels.shape) < 0.4)
    labels = np.where(move, (labels + 2) % K, labels)
    assert 0.5 < _agreement(labels, probs) < 0.65
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    audit.update(labels, probs)
    fraction = audit.num_issues / int(valid.sum())
    assert fraction > 0.3
    (message,) = audit.setup_warnings()
    assert f"{fraction:.1%} of the {int(valid.sum())} labelled pixels" in message
    assert "estimated to be label issues" in message
    with pytest.warns(segaudit.SetupWarning) as record:
        segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
    assert [str(w.message) for w in _setup_records(record)] == [message]


def test_setup_warnings_needs_a_batch() -> None:
    with pytest.raises(ValueError, match="no batches yet"):
        segaudit.LabelAudit(K).setup_warnings()


@pytest.mark.requires_dask
def test_dask_warns_like_numpy() -> None:
    import dask.array as da

    labels, probs = _shifted(4)
    with pytest.warns(segaudit.SetupWarning) as expected:
        segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
    with pytest.warns(segaudit.SetupWarning) as record:
        segaudit.find_label_issues(
            da.from_array(labels, chunks=(1, 16, 16)),
            da.from_array(probs, chunks=(1, K, 16, 16)),
            ignore_index=VOID,
            verbose=False,
        )
    got = _setup_records(record)
    assert [str(w.message) for w in got] == [str(w.message) for w in _setup_records(expected)]
    assert {w.filename for w in got} == {__file__}
