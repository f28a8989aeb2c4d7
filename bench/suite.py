"""What the test suite costs: runs pytest (the README's suite, or the arguments after
``--``) with a JUnit XML report and prints the slowest tests (setup, call and teardown
together, as a fixture built for one test is paid by that test) and the total.

    python bench/suite.py                 # the whole suite as make test runs it, slowest 25
    python bench/suite.py --top 10 -- -m "not slow"      # one worker, the fast tier

The total is the sum of the tests' own times (what they cost, whatever the workers); the
wall time is what a run waits, with make test's two pytest-xdist workers by default.

Writes bench/results/suite.json: the total wall time, pytest's own time, the test count,
the outcome counts and the slowest tests. Timings are this host's (2 cores in CI).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from common import ROOT, report

MAKE_TEST = ["-n", "2"]  # as the Makefile's PYTEST


def run(pytest_args: list[str]) -> tuple[float, ET.Element, int]:
    """Run pytest in ROOT; returns (wall seconds, the JUnit <testsuite>, pytest's exit code)."""
    with tempfile.TemporaryDirectory() as folder:
        xml = Path(folder) / "suite.xml"
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--junitxml={xml}", *pytest_args],
            cwd=ROOT, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        root = ET.parse(xml).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, "pytest wrote no <testsuite>"
    return wall, suite, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25, help="how many of the slowest to list")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    wall, suite, code = run(args.pytest_args or MAKE_TEST)
    cases = [
        (float(case.get("time", 0)), f"{case.get('classname', '')}::{case.get('name', '')}")
        for case in suite.iter("testcase")
    ]
    cases.sort(reverse=True)
    rows = [[f"{seconds:.1f}", name] for seconds, name in cases[: args.top]]
    rows.append([f"{sum(s for s, _ in cases):.1f}", f"total of {len(cases)} tests"])
    report(
        "suite",
        ["seconds", "test"],
        rows,
        {
            "wall_s": round(wall, 1),
            "pytest_s": float(suite.get("time", 0)),
            "tests": len(cases),
            "failures": int(suite.get("failures", 0)) + int(suite.get("errors", 0)),
            "skipped": int(suite.get("skipped", 0)),
            "pytest_args": args.pytest_args or MAKE_TEST,
            "host": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    )
    print(f"wall {wall:.0f} s for {len(cases)} tests (pytest exit code {code})")
    sys.exit(code)


if __name__ == "__main__":
    main()
