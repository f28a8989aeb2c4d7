"""What a killed export leaves (found by bench/faults.py: one ``*.tmp`` GGUF left after a
kill -9 and a successful rerun) is removed by the next export, and its run marked failed."""

from __future__ import annotations


def test_the_next_export_sweeps_what_a_killed_one_left(workspace):
    from training import export

    ws = workspace
    ws.store.add_account("me")
    done = ws.store.start_run("me", "export", "a", {})
    ws.store.finish_run(done, "done", "x")
    killed = ws.store.start_run("me", "export", "b", {})
    folder = ws.run_path("me", killed)
    (folder / "model-Q8_0.gguf.tmp").write_bytes(b"half a model")
    (folder / "merged-k3j2").mkdir()
    (folder / "merged-k3j2" / "model.safetensors").write_bytes(b"weights")
    kept = ws.run_path("me", done) / "model-Q8_0.gguf"
    kept.write_bytes(b"a finished export")

    removed = export.sweep_unfinished(ws, "me")
    assert sorted(p.name for p in removed) == ["merged-k3j2", "model-Q8_0.gguf.tmp"]
    assert list(folder.iterdir()) == [] and kept.exists()
    assert ws.store.run(killed).status == "failed" and ws.store.run(done).status == "done"
