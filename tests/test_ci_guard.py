"""The CI guard in conftest.py: skipped `wgpu`/`display` tests fail when CI demands them."""

from __future__ import annotations

from pathlib import Path

import pytest

GUARD_ENV = "PYASG_REQUIRE_ACCEL_TESTS"

SKIPPED_WGPU_TEST = """
import pytest

@pytest.mark.wgpu
def test_needs_adapter():
    pytest.skip("no Vulkan adapter")
"""


@pytest.fixture
def guarded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose conftest is this project's real conftest.py, with the guard env unset."""
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    monkeypatch.delenv(GUARD_ENV, raising=False)
    return pytester


def test_skipped_wgpu_test_fails_when_ci_requires_accelerator_tests(
    guarded: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GUARD_ENV, "1")
    guarded.makepyfile(SKIPPED_WGPU_TEST)
    result = guarded.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*mark.wgpu was skipped (*no Vulkan adapter*)*CI must not skip*"])


def test_skipped_wgpu_test_stays_skipped_without_the_env_var(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(SKIPPED_WGPU_TEST)
    result = guarded.runpytest()
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK


def test_skip_mark_on_display_test_is_an_error_when_ci_requires_it(
    guarded: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GUARD_ENV, "1")
    guarded.makepyfile(
        """
        import pytest

        @pytest.mark.display
        @pytest.mark.skipif(True, reason="no X display")
        def test_needs_display():
            pass
        """
    )
    result = guarded.runpytest()
    result.assert_outcomes(errors=1)  # skipped during setup, so reported as a setup error
    result.stdout.fnmatch_lines(["*mark.display was skipped*no X display*"])


def test_guard_leaves_unmarked_skips_and_xfails_alone(
    guarded: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GUARD_ENV, "1")
    guarded.makepyfile(
        """
        import pytest

        def test_unmarked():
            pytest.skip("not an accelerator test")

        @pytest.mark.wgpu
        @pytest.mark.xfail(reason="known bug")
        def test_known_bug():
            assert False
        """
    )
    result = guarded.runpytest()
    result.assert_outcomes(skipped=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
