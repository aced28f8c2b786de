"""The public surface: exported names, module mirrors, signatures, docstring examples."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import segaudit

# Every public name, and the module that mirrors cleanlab.segmentation (None: segaudit only).
# Adding a public name means adding one line here.
PUBLIC_API = {
    "AuditImage": None,
    "LabelAudit": None,
    "SetupWarning": None,
    "find_issue_regions": None,
    "common_label_issues": "summary",
    "display_issues": "summary",
    "filter_by_class": "summary",
    "find_label_issues": "filter",
    "get_label_quality_scores": "rank",
    "issues_from_scores": "rank",
}

# Parameters that may be passed by position (data, and the reference's positional
# signature); every other parameter must be keyword-only.
POSITIONAL = {
    "find_label_issues": ["labels", "pred_probs"],
    "get_label_quality_scores": ["labels", "pred_probs"],
    "issues_from_scores": ["image_scores", "pixel_scores", "threshold"],
    "common_label_issues": ["issues", "labels", "pred_probs"],
    "filter_by_class": ["class_index", "issues", "labels", "pred_probs"],
    "display_issues": ["issues", "labels", "pred_probs"],
}

# Options the reference hides in **kwargs (its docs name them), which segaudit spells out.
REFERENCE_KWARGS = {
    "find_label_issues": {"downsample"},
    "get_label_quality_scores": {"downsample", "temperature"},
}

MIRRORED = ("filter", "rank", "summary")


def test_all_is_exactly_the_public_api():
    assert len(segaudit.__all__) == len(set(segaudit.__all__))
    assert set(segaudit.__all__) == set(PUBLIC_API)
    for name in PUBLIC_API:
        assert callable(getattr(segaudit, name)), name


def test_no_other_public_names_leak():
    public = {n for n in dir(segaudit) if not n.startswith("_")}
    modules = {n for n in public if inspect.ismodule(getattr(segaudit, n))}
    assert public - modules == set(PUBLIC_API)


@pytest.mark.parametrize("module", MIRRORED)
def test_mirrored_modules_expose_the_same_functions(module):
    mod = importlib.import_module(f"segaudit.{module}")
    expected = {n for n, m in PUBLIC_API.items() if m == module}
    assert set(mod.__all__) == expected
    for name in expected:
        assert getattr(mod, name) is getattr(segaudit, name)


@pytest.mark.parametrize("module", MIRRORED)
def test_mirrors_cover_the_reference_modules(module):
    """Switching from cleanlab is a one-line import change."""
    ref = pytest.importorskip(
        f"cleanlab.segmentation.{module}", reason="the reference (cleanlab==2.9.0) is not installed"
    )
    ours = importlib.import_module(f"segaudit.{module}")
    ref_public = {
        n
        for n, f in vars(ref).items()
        if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == ref.__name__
    }
    assert ref_public <= set(ours.__all__)


@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_signatures(name):
    sig = inspect.signature(getattr(segaudit, name))
    params = list(sig.parameters.values())
    kinds = {p.name: p.kind for p in params}
    assert inspect.Parameter.VAR_KEYWORD not in kinds.values(), "no **kwargs: typos must fail"
    assert inspect.Parameter.VAR_POSITIONAL not in kinds.values()
    positional = [p.name for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional == POSITIONAL[name]
    for p in params:
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            assert p.default is not inspect.Parameter.empty, f"{p.name} needs a default"


@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_reference_calls_still_work(name):
    """Every parameter name of the reference exists, positionals in the same order."""
    module = PUBLIC_API[name]
    ref = pytest.importorskip(
        f"cleanlab.segmentation.{module}", reason="the reference (cleanlab==2.9.0) is not installed"
    )
    ours = inspect.signature(getattr(segaudit, name)).parameters
    theirs = inspect.signature(getattr(ref, name)).parameters.values()
    ref_positional = [
        p.name
        for p in theirs
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    assert POSITIONAL[name][: len(ref_positional)] == ref_positional
    named = {p.name for p in theirs if p.kind is not inspect.Parameter.VAR_KEYWORD}
    assert named | REFERENCE_KWARGS.get(name, set()) <= set(ours)


@pytest.mark.parametrize("module", ["segaudit.filter", "segaudit.rank", "segaudit.summary"])
def test_docstring_examples(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{module} has no examples"
    assert result.failed == 0


@pytest.mark.parametrize("name", sorted(PUBLIC_API))
def test_public_functions_are_documented(name):
    obj = getattr(segaudit, name)
    doc = inspect.getdoc(obj)
    assert doc, f"{name} has no docstring"
    if not inspect.isfunction(obj):
        return
    assert "Parameters" in doc and "Returns" in doc
    for param in inspect.signature(getattr(segaudit, name)).parameters:
        assert param in doc, f"{name}: {param} is not documented"
