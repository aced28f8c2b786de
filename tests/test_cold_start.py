"""Cold start (issue #11): a light import, and the "auto" kernels that never wait for numba.

The default kernels serve calls with the numpy twins until the compiled kernel
for the call's argument types is ready (compiled by a child process into
numba's disk cache), then with numba. These tests check that the paths give the
same results, that the background compile completes and is then used, and what
happens with no writable cache and at exit. No timing is asserted: speed is
measured in ``benchmarks/bench_coldstart.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

import segaudit
from conftest import make_dataset
from segaudit.kernels import _auto, _numba, _numpy, _warm
from segaudit.kernels._choice import get_kernels

SRC = Path(segaudit.__file__).resolve().parents[1]
HEAVY = ("pandas", "scipy", "numba", "dask", "torch")


def _python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with segaudit importable and `env` added."""
    full = {k: v for k, v in os.environ.items() if k != "SEGAUDIT_KERNEL"}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    full.update(env)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)],
        env=full,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,  # a hang detector only
    )


@pytest.fixture
def auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default kernels, as in a new process: no compiled kernel ready yet."""
    monkeypatch.delenv("SEGAUDIT_KERNEL", raising=False)
    assert _auto.wait_idle(timeout=800)
    for name in ("_ready", "_failed", "_work"):
        monkeypatch.setattr(_auto, name, type(getattr(_auto, name))())


# ---------------------------------------------------------------- a light import


def test_import_and_a_small_call_load_no_heavy_library(tmp_path):
    run = _python(
        f"""
        import sys
        import segaudit
        after_import = [m for m in {HEAVY!r} if m in sys.modules]
        assert "numpy" not in sys.modules, "import segaudit needs no numpy"
        import numpy as np
        labels = np.zeros((2, 8, 8), dtype=np.int64)
        labels[:, :2] = 1
        probs = np.full((2, 3, 8, 8), 0.2)
        probs[:, 0] = 0.6
        segaudit.find_label_issues(labels, probs, verbose=False)
        segaudit.get_label_quality_scores(labels, probs, verbose=False)
        after_calls = [m for m in {HEAVY!r} if m in sys.modules]
        segaudit.find_label_issues(labels, probs, verbose=False, filter_by="confident_regions")
        after_regions = [m for m in {HEAVY!r} if m in sys.modules and m != "scipy"]
        print(after_import, after_calls, after_regions, "tqdm" in sys.modules)
        """,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["[]", "[]", "[]", "False"]


def test_lazy_public_names_are_the_modules_objects():
    import segaudit.filter
    import segaudit.rank

    assert segaudit.find_label_issues is segaudit.filter.find_label_issues
    assert segaudit.get_label_quality_scores is segaudit.rank.get_label_quality_scores
    assert set(segaudit.__all__) <= set(dir(segaudit))
    assert segaudit.io.DatasetError.__module__ == "segaudit.io._problems"
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        _ = segaudit.no_such_name


# ---------------------------------------------------------------- choosing


def test_auto_is_the_default_and_the_others_can_be_forced(auto, monkeypatch):
    assert get_kernels() is _auto
    monkeypatch.setenv("SEGAUDIT_KERNEL", "numba")
    assert get_kernels() is _numba
    monkeypatch.setenv("SEGAUDIT_KERNEL", "AUTO")
    assert get_kernels() is _auto
    assert set(_numpy.__all__) <= set(_auto.__all__)


def _arrays() -> list[np.ndarray]:
    base = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    readonly = np.zeros((2, 3), np.int64)
    readonly.flags.writeable = False
    return [
        base,
        base.astype(np.float32),
        np.asfortranarray(base),
        base[:, ::2],
        base.reshape(-1),
        base[0].T,
        readonly,
        np.zeros(3, np.uint8),
        np.zeros((2, 2), np.bool_),
        np.zeros((), np.int16),
        np.frombuffer(bytes(16), np.float32),  # read-only
    ]


@pytest.mark.parametrize(
    "value", [*_arrays(), 3, True, 2.5, np.int64(4), np.uint64(2), np.bool_(1)]
)
def test_argument_specs_give_numbas_own_types(value):
    """The compiled signature is the one numba's dispatcher picks for the argument."""
    spec = _auto.arg_spec(value)
    assert spec is not None
    assert _warm.signature([spec]) == (numba.typeof(value),)


def test_a_read_only_memmap_gets_numbas_own_type(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 4), np.float32))
    for mode in ("r", "r+"):
        value = np.load(tmp_path / "a.npy", mmap_mode=mode)[:, 1:]
        assert _warm.signature([_auto.arg_spec(value)]) == (numba.typeof(value),)


@pytest.mark.parametrize(
    "value", [np.zeros(2, ">f8"), np.zeros(2, complex), np.zeros(2, object), 2**64, "text", None]
)
def test_arguments_numba_would_not_take_stay_on_numpy(value):
    assert _auto.arg_spec(value) is None
    assert _auto.call_key("count_above", (value,)) is None


# ---------------------------------------------------------------- same results


def _results(labels, probs, **kwargs):
    mask = segaudit.find_label_issues(labels, probs, verbose=False, **kwargs)
    regions = segaudit.find_label_issues(
        labels, probs, verbose=False, filter_by="confident_regions", **kwargs
    )
    image, pixel = segaudit.get_label_quality_scores(labels, probs, verbose=False, **kwargs)
    counts = segaudit.get_label_quality_scores(
        labels, probs, verbose=False, method="num_pixel_issues", **kwargs
    )
    return mask, regions, image, pixel, counts[0]


def _assert_same(got, want, from_logits):
    mask, regions, image, pixel, counts = got
    np.testing.assert_array_equal(mask, want[0])
    np.testing.assert_array_equal(regions, want[1])
    np.testing.assert_array_equal(counts, want[4])
    # both paths compute a softmax's exp with the same operations
    # (kernels/_exp.py), so pixel scores of logits are bit for bit too; and the
    # softmin image scores (the same exp, sums in pixel order)
    np.testing.assert_array_equal(pixel, want[3])
    np.testing.assert_array_equal(image, want[2])


@pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")
@pytest.mark.parametrize("from_logits", [False, True])
def test_auto_gives_the_same_results_before_and_after_numba_is_ready(
    auto, monkeypatch, from_logits
):
    """Served by the numpy twins, then (once compiled) by numba: the same results."""
    labels, probs = make_dataset(7, n=3, k=5, h=40, w=50, noise=0.2)
    probs = np.log(probs) if from_logits else probs.astype(np.float32)
    with monkeypatch.context() as mp:
        mp.setenv("SEGAUDIT_KERNEL", "numba")
        want = _results(labels, probs, from_logits=from_logits)
    monkeypatch.setattr(_auto, "WARM_AFTER", 10**15)  # numpy serves, nothing is asked for
    before = _auto.served()
    _assert_same(_results(labels, probs, from_logits=from_logits), want, from_logits)
    assert _auto.served()[0] > before[0] and _auto.served()[1] == before[1]
    monkeypatch.setattr(_auto, "WARM_AFTER", 0)  # every call asks for its compiled kernel
    _assert_same(_results(labels, probs, from_logits=from_logits), want, from_logits)
    assert _auto.wait_idle(timeout=800)
    before = _auto.served()
    _assert_same(_results(labels, probs, from_logits=from_logits), want, from_logits)
    numpy_calls, numba_calls = (
        now - then for now, then in zip(_auto.served(), before, strict=True)
    )
    assert numba_calls > 0 and numpy_calls == 0, (numpy_calls, numba_calls)
    assert _auto.loaded_numba() is numba


# ---------------------------------------------------------------- the background compile


_COUNT_ABOVE = """
    import logging, sys
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import numpy as np
    from segaudit.kernels import _auto
    _auto.WARM_AFTER = 0
    max_prob = np.linspace(0, 1, 101).astype(np.float32)
    argmax = (np.arange(101) % 3).astype(np.uint8)
    adjusted = np.array([0.2, 0.5, 0.9])
    args = (max_prob, argmax, adjusted)
    key = _auto.call_key("count_above", args)
    first = int(_auto.count_above(*args))
    assert first == np.count_nonzero(max_prob >= adjusted[argmax]) > 0
"""


def test_the_background_compile_fills_the_cache_and_then_serves(tmp_path):
    cache = tmp_path / "cache"
    run = _python(
        _COUNT_ABOVE
        + """
    assert "numba" not in sys.modules or not _auto.is_ready(key)
    ready = _auto.wait_ready(key, timeout=800)
    numpy_calls, numba_calls = _auto.served()
    second = int(_auto.count_above(*args))
    print(first, second, ready, numpy_calls, _auto.served()[1] - numba_calls)
    """,
        tmp_path,
        NUMBA_CACHE_DIR=str(cache),
        TMPDIR=str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    first, second, ready, numpy_calls, numba_calls = run.stdout.split()
    assert first == second
    assert (ready, numpy_calls, numba_calls) == ("True", "1", "1")
    assert any(cache.rglob("*count_above*.nbi")), "the child compiled into the cache"
    assert not list(cache.rglob("*.tmp.*")), "no half-written cache file"
    assert "segaudit:" not in run.stderr


def test_exit_while_compiling_neither_hangs_nor_corrupts_the_cache(tmp_path):
    """The process exits while its child compiles; the cache is whole and loads later."""
    cache = tmp_path / "cache"
    env = {"NUMBA_CACHE_DIR": str(cache), "TMPDIR": str(tmp_path)}
    lock = tmp_path / f"{_warm.LOCK_PREFIX}{os.getuid()}.lock"
    run = _python(
        _COUNT_ABOVE
        + f"""
    import os, time
    for _ in range(8000):  # until the child has imported numba and takes its turn
        if _auto.is_ready(key) or os.path.exists({str(lock)!r}):
            break
        time.sleep(0.1)
    print(_auto.is_ready(key))
    """,
        tmp_path,
        **env,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False"], "it exited before the compile was done"
    assert "segaudit:" not in run.stderr and "Traceback" not in run.stderr
    again = _python(
        _COUNT_ABOVE
        + """
    print(_auto.wait_ready(key, timeout=800), int(_auto.count_above(*args)) == first)
    """,
        tmp_path,
        **env,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["True", "True"]
    assert not list(cache.rglob("*.tmp.*")), "no half-written cache file"


def test_without_a_writable_cache_numpy_serves_and_says_so_once(tmp_path):
    """A read-only install, no cache folder anywhere: results as ever, one warning."""
    site = tmp_path / "site"
    shutil.copytree(
        SRC / "segaudit", site / "segaudit", ignore=shutil.ignore_patterns("__pycache__")
    )
    (site / "segaudit" / "kernels" / "__pycache__").write_text("a file, not a folder")
    temp = tmp_path / "tmp"
    temp.mkdir()
    (temp / f"segaudit-numba-cache-{os.getuid()}").write_text("not a folder: no fallback")
    blocked = "/dev/null/not-a-folder"
    run = _python(
        _COUNT_ABOVE
        + """
    ready = _auto.wait_ready(key, timeout=800)
    again = _auto.wait_ready(_auto.call_key("compact", (max_prob, np.zeros(1, np.int64), 3)))
    print(first, int(_auto.count_above(*args)), ready, again, _auto.served()[1])
    """,
        tmp_path,
        PYTHONPATH=str(site),
        HOME=blocked,
        XDG_CACHE_HOME=blocked,
        NUMBA_CACHE_DIR=blocked,
        TMPDIR=str(temp),
        PYTHONDONTWRITEBYTECODE="1",
    )
    assert run.returncode == 0, run.stderr
    first, second, ready, again, numba_calls = run.stdout.split()
    assert (first == second, ready, again, numba_calls) == (True, "False", "False", "0")
    notices = [line for line in run.stderr.splitlines() if "segaudit:" in line]
    assert len(notices) == 1, run.stderr  # once, however many kernels are asked for
    assert "numpy kernels serve instead" in notices[0]


def test_processes_asking_at_once_take_turns_and_all_get_the_kernel(tmp_path):
    """Like dask workers: several processes, one cache, one lock; each ends up on numba."""
    cache = tmp_path / "cache"
    full = {k: v for k, v in os.environ.items() if k != "SEGAUDIT_KERNEL"}
    full.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p),
        NUMBA_CACHE_DIR=str(cache),
        TMPDIR=str(tmp_path),
    )
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            _COUNT_ABOVE
            + """
    print(_auto.wait_ready(key, timeout=800), int(_auto.count_above(*args)) == first)
    """
        ),
        encoding="utf-8",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(script)],
            env=full,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        assert out.split() == ["True", "True"], err
    assert len(list(cache.rglob("*count_above*.nbi"))) == 1
    assert not list(cache.rglob("*.tmp.*"))


def test_a_twin_needing_a_missing_library_hands_over_to_numba(tmp_path):
    """scipy is optional (the region twins need it); without it numba serves those calls."""
    run = _python(
        """
        import sys
        sys.modules["scipy"] = None  # as if scipy were not installed
        import numpy as np
        import segaudit
        from segaudit.kernels import _auto
        rng = np.random.default_rng(3)
        labels = rng.integers(0, 3, size=(2, 12, 12))
        probs = rng.dirichlet(np.ones(3), size=(2, 12, 12)).transpose(0, 3, 1, 2)
        mask = segaudit.find_label_issues(
            labels, probs, verbose=False, filter_by="confident_regions"
        )
        print(mask.shape, _auto.served()[1] > 0)
        """,
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["(2,", "12,", "12)", "True"]
