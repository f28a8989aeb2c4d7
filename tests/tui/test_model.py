"""The Model screen runs the whole job from the app on the embedded model (issue 12):
playback -> training -> export on ten of David's emails, with progress and the loss chart;
cancel mid-training, resume, finish; the new export becomes active for the next draft."""

from __future__ import annotations

import pytest

from tests.conftest import shared
from tests.helpers import until_async


@pytest.fixture()
def small_ws(home, monkeypatch, tmp_path):
    from panza_core.workspace import Workspace
    from sync.importer import import_path

    for key, value in {"MAX_STEPS": "4", "BATCH_SIZE": "2", "CHECKPOINT_EVERY": "1"}.items():
        monkeypatch.setenv(f"PANZA_TRAINING__{key}", value)
    lines = shared("panza", "david.jsonl").read_text(encoding="utf-8").splitlines()[:10]
    data = tmp_path / "david10.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws = Workspace()
    ws.store.add_account("d")
    import_path(ws.store, "d", data)
    yield ws
    ws.store.close()


@pytest.mark.slow
async def test_model_screen_trains_cancels_resumes_and_activates_the_export(small_ws, monkeypatch):
    from textual.widgets import ProgressBar, Sparkline, Static

    from panza_core.drafting import choose_model
    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.model import ModelScreen
    from training.job import JobState

    monkeypatch.setattr(ModelScreen, "stages", ("playback", "train", "export"))
    app = PanzaApp(account="d", workspace=small_ws)
    async with app.run_test(size=(110, 34)) as pilot:
        await pilot.press("m")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        status = screen.query_one("#model-status", Static)
        assert "no model trained yet" in str(status.render())

        await pilot.press("g")
        job = app.jobs["d"]
        assert await until_async(lambda: len(job.losses) >= 1, pilot, timeout=300)
        assert "Panza · d: train" in app.title  # shown on every screen while it runs
        await pilot.press("c")
        assert await until_async(lambda: not app.job_running("d"), pilot, timeout=120)
        assert app.job_state("d").state is JobState.CANCELLED
        await pilot.pause(0.5)
        assert "was interrupted" in str(status.render())
        assert small_ws.store.latest_run("d", "export") is None

        await pilot.press("r")
        resumed = app.jobs["d"]
        assert resumed is not job
        assert await until_async(lambda: not app.job_running("d"), pilot, timeout=600)
        assert app.job_state("d").state is JobState.DONE, app.job_state("d")
        await pilot.pause(0.5)
        trained = resumed.results["train"]
        assert trained.metrics.resumed_at is not None and trained.metrics.steps == 4
        assert screen.query_one("#bar-export", ProgressBar).percentage == 1.0
        assert len(screen.query_one("#loss", Sparkline).data) >= 1
        assert "0 new emails since model" in str(status.render())
        export = small_ws.store.latest_run("d", "export")
        assert small_ws.store.account("d").active_export == export.id
        assert str(choose_model(small_ws, "d").path) == export.path  # the next draft uses it
        assert app.title == "Panza"


def _job(ws, outcome: str):
    """A finished-looking or mid-training job with fixed reports, for stable snapshots."""
    from training.job import JobState, ModelJob, Outcome, Update

    job = ModelJob(ws, "demo", stages=("playback", "train", "export"))
    job.started = 1000.0
    losses = [3.9, 3.4, 3.5, 3.0, 2.8, 2.9, 2.6, 2.5]
    reports = [Update("playback", 0, 0, info="starting", at=1000.0),
               Update("playback", 65, 65, at=1060.0),
               Update("playback", 1, 1, info="done", at=1060.0),
               Update("train", 0, 0, info="starting", at=1060.0)]  # fmt: skip
    steps = len(losses) if outcome == "done" else 5
    reports += [Update("train", i + 1, 8, loss, at=1070.0 + 10 * i)
                for i, loss in enumerate(losses[:steps])]  # fmt: skip
    if outcome == "done":
        reports += [Update("train", 1, 1, info="done", at=1150.0),
                    Update("export", 0, 0, info="starting", at=1150.0),
                    Update("export", 1, 1, info="done", at=1180.0)]  # fmt: skip
    for update in reports:
        job._report(update, None)
    if outcome == "done":
        job.finish(Outcome(JobState.DONE))
    return job


@pytest.mark.parametrize("outcome", ["idle", "running", "done"])
def test_model_screen_snapshots(demo_ws, snap_compare, monkeypatch, outcome):
    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens import model

    monkeypatch.setattr(model.time, "time", lambda: 1125.0 if outcome == "running" else 1190.0)
    app = PanzaApp(account="demo", workspace=demo_ws)

    async def prepare(pilot):
        if outcome != "idle":
            app.jobs["demo"] = _job(demo_ws, outcome)
        await pilot.press("m")
        await pilot.pause(0.5)

    assert snap_compare(app, run_before=prepare, terminal_size=(110, 30))
