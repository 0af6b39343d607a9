"""Test-wide setup: hypothesis profiles, and the CI guard against skipped accelerator tests.

Profiles: "ci" (few, derandomized examples) when $CI is set, else "dev";
$HYPOTHESIS_PROFILE overrides either; "fuzz" (2,000 random examples a test) is the long
campaign to run by hand.

Guard: with PYASG_REQUIRE_ACCEL_TESTS=1 (set by .ci/run), a test marked `wgpu` or
`display` that is skipped is reported as failed, so CI cannot pass without
running them on lavapipe and Xvfb.
"""

from __future__ import annotations

import os

# One BLAS thread per test process: `pytest -n 2` on 2 cores already fills them, and
# OpenBLAS threads that spin-wait on a busy core stall a matmul 100-fold. Set before
# the workers (and numpy in them) start; an explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

pytest_plugins = ["pytester"]

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
# The long campaign, by hand: HYPOTHESIS_PROFILE=fuzz (random, not derandomized, so each
# run explores new cases; test_api_fuzz's per-case time limit still holds).
settings.register_profile(
    "fuzz",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_default_profile = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or _default_profile)

#: Markers of tests that CI must run, never skip.
ACCEL_MARKERS = ("wgpu", "display")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return  # an xfail is an expected failure, not a skip
    if os.environ.get("PYASG_REQUIRE_ACCEL_TESTS") != "1":
        return
    marker = next((m for m in ACCEL_MARKERS if item.get_closest_marker(m)), None)
    if marker is None:
        return
    _, _, reason = report.longrepr if isinstance(report.longrepr, tuple) else ("", "", "")
    report.outcome = "failed"
    report.longrepr = (
        f"test marked @pytest.mark.{marker} was skipped ({reason or 'no reason given'}), "
        "but PYASG_REQUIRE_ACCEL_TESTS=1: CI must not skip accelerator/display tests."
    )
