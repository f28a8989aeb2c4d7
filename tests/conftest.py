"""Shared fixtures: an isolated Panza home per test, the shared real-mail data, and one
trained pipeline on David's mail that the slow end-to-end tests share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    """A path in ../shared/data; skips the test (with the reason) if it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared real-mail data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One model cache for the whole run, shared by pytest-xdist's workers: the dequantized
    base is made once (its writers rename whole files into place, so two workers racing to
    make it each see a complete copy)."""
    env = os.environ.get("PANZA_TEST_CACHE")
    if env:
        return Path(env)
    if worker_id == "master":
        return tmp_path_factory.mktemp("cache")
    shared_root = tmp_path_factory.getbasetemp().parent / "cache"  # beside the workers' own
    shared_root.mkdir(exist_ok=True)
    return shared_root


def pytest_configure(config: pytest.Config) -> None:
    """Pin each pytest-xdist worker (and the processes it starts) to a core of its own.
    Each library sizes its thread pool to the cores it may use (``core.threads``), so two
    workers on two cores run one thread each, instead of two each fighting for both cores
    (which made a training test 3-4 times slower)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Llama folder (2 layers, hidden 64, the real Llama-3 vocabulary:
    tests/tiny_models.py), made once per run: for the checks that hold whatever the weights
    (resume, DDP, a benchmark script's plumbing), where a training step takes milliseconds."""
    from tests import tiny_models

    folder = tmp_path_factory.mktemp("tiny-llama") / tiny_models.FAMILIES["llama"].name
    return tiny_models.build("llama", folder)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> Path:
    """A fresh, empty PANZA_HOME for one test."""
    monkeypatch.setenv("PANZA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PANZA_CACHE", str(cache_dir))
    monkeypatch.setenv("PANZA_NO_KEYRING", "1")  # never touch the developer's real keyring
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # nor their Hugging Face cache
    for name in list(os.environ):
        if name.startswith("PANZA_") and "__" in name:
            monkeypatch.delenv(name)
    return tmp_path / "home"


@pytest.fixture()
def workspace(home: Path):
    from panza_core.workspace import Workspace

    ws = Workspace()
    yield ws
    ws.store.close()


MARCUS = "patchvonbraun@gmail.com"  # the usrp-users list's most active member


@pytest.fixture(scope="session")
def marcus_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file with usrp-users imported as Marcus's account (his 162 emails kept, the
    list's other mail received), made once per run; tests copy it (``marcus_ws``)."""
    from panza_core.store import Store
    from sync.importer import import_path

    path = tmp_path_factory.mktemp("marcus") / "panza.sqlite3"
    with Store(path) as store:
        store.add_account("marcus", [MARCUS])
        import_path(store, "marcus", shared("mbox", "usrp-users-800.mbox"))
    return path


@pytest.fixture()
def marcus_ws(home: Path, marcus_store: Path):
    """A workspace whose store is a fresh copy of ``marcus_store``."""
    import shutil

    from panza_core.workspace import Workspace

    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(marcus_store, home / "panza.sqlite3")
    ws = Workspace()
    yield ws
    ws.store.close()


@pytest.fixture()
def fake():
    """The local stand-in for the Gmail API and Google's OAuth endpoints, running."""
    from tests.sync.fake_gmail import FakeGmail

    server = FakeGmail()
    yield server
    server.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """End the run with one line naming the system packages whose tests did not run."""
    from tests.system_packages import SKIP_PREFIX

    untested: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        if SKIP_PREFIX in reason:
            package = reason.split(SKIP_PREFIX, 1)[1].split()[0]
            untested[package] = untested.get(package, 0) + 1
    if untested:
        counts = ", ".join(
            f"{package} ({n} test{'s' if n > 1 else ''})" for package, n in sorted(untested.items())
        )
        terminalreporter.write_line(f"not tested, for want of system packages: {counts}")
