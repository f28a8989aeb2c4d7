"""A ten-year mailbox: the pipeline's cost at 5,000 and 50,000 sent emails.

Builds an mbox of N messages from the shared real mail (the usrp-users mailing list and the
raw Enron messages), every copy with its own Message-ID, a date spread over ten years, the
user as sender and a numbered subject (so no two are the same email), then times each step
in a process of its own and reports its peak RSS (VmHWM):

- import: ``sync.importer.import_path`` (streams the mbox into the store)
- index: ``retrieval.update_index`` (embeds every email, a batch at a time)
- selection: ``training.selection.choose`` ([training] max_emails of the N)
- playback: the selection's first ``--playback-sample`` emails, batched; the whole selection's
  time is projected from that rate
- train: ``--train-steps`` LoRA steps on the played-back sample; one epoch of the selection
  is projected from the time per email

Cost growth is what matters: playback and training see the selection (at most 1,000 emails)
whatever N is, so they should cost the same at both sizes.
"""

from __future__ import annotations

import argparse
import email
import email.utils
import json
import os
import subprocess
import sys
import time
from email.generator import BytesGenerator
from email.policy import compat32
from io import BytesIO
from pathlib import Path

from common import ROOT, SHARED, report, table, temp_home

ME = "me@example.org"
STEPS = ("import", "index", "selection", "playback", "train")


def originals() -> list[bytes]:
    """The raw messages the big mbox is made of."""
    from sync import files

    raws = [raw for _, raw in files.read(SHARED / "mbox" / "usrp-users-800.mbox")]
    for path in sorted((SHARED / "enron").rglob("*")):
        if path.is_file():
            raws.append(path.read_bytes())
    return [r for r in raws if isinstance(r, bytes)]


def build_mbox(path: Path, n: int) -> None:
    """Write ``n`` messages to ``path``, streaming (one message in memory at a time)."""
    base = originals()
    start = time.mktime((2016, 1, 1, 0, 0, 0, 0, 0, 0))
    span = 10 * 365 * 86400
    with path.open("wb") as out:
        for i in range(n):
            message = email.message_from_bytes(base[i % len(base)], policy=compat32)
            copy = i // len(base)
            for header in ("Message-ID", "Date", "From", "Subject", "In-Reply-To", "References"):
                del message[header]
            original = email.message_from_bytes(base[i % len(base)], policy=compat32)
            subject = str(original.get("Subject", "") or "").replace("\n", " ")
            message["Message-ID"] = f"<scale.{i}@example.org>"
            message["Date"] = email.utils.formatdate(start + span * i / n, localtime=False)
            message["From"] = f"Me <{ME}>"
            message["Subject"] = f"{subject} ({copy})" if copy else subject
            out.write(f"From {ME} Thu Jan  1 00:00:00 2026\n".encode())
            buffer = BytesIO()
            BytesGenerator(buffer, mangle_from_=True).flatten(message)
            out.write(buffer.getvalue().rstrip(b"\n") + b"\n\n")


def run_step(step: str, args: argparse.Namespace) -> dict:
    """One step, in this process; returns its measurements (peak RSS added by main)."""
    sys.path.insert(0, str(ROOT))
    from panza_core.workspace import Workspace

    ws = Workspace()
    started = time.perf_counter()
    out: dict = {}
    if step == "import":
        from sync.importer import import_path

        ws.store.add_account("me", [ME])
        result = import_path(ws.store, "me", Path(args.mbox))
        out["kept"] = result.counts["kept"]
        out["counts"] = dict(result.counts)
    elif step == "index":
        out["embedded"] = ws.update_index("me", every_core=True)  # as `panza import` does
    elif step == "selection":
        from training import selection

        chosen = selection.choose(ws, "me")
        out.update(pool=chosen.pool, train=len(chosen.train), test=len(chosen.test),
                   skipped=dict(chosen.skipped))  # fmt: skip
    elif step == "playback":
        from training import playback, selection

        chosen = selection.choose(ws, "me")
        started = time.perf_counter()  # the choice was timed in its own step
        sample = chosen.emails[: args.playback_sample]
        result = playback.run(ws.store, "me", ws.llm, ws.config.playback, messages=sample)
        seconds = time.perf_counter() - started
        out.update(emails=len(sample), counts=dict(result.counts),
                   emails_per_min=len(sample) / seconds * 60,
                   projected_selection_s=seconds / len(sample) * len(chosen.emails))  # fmt: skip
    elif step == "train":
        from training import finetune, selection

        config = ws.config.training
        ws = ws.with_config(training={"max_steps": args.train_steps, "rag_probability": 0.0})
        result = finetune.train(ws, "me")
        chosen = selection.choose(ws, "me")
        per_email = result.metrics.seconds / (args.train_steps * config.batch_size)
        out.update(steps=result.metrics.steps, seconds_per_email=per_email,
                   projected_epoch_s=per_email * len(chosen.train))  # fmt: skip
    out["seconds"] = time.perf_counter() - started
    return out


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="5000,50000")
    parser.add_argument("--playback-sample", type=int, default=48)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--name", default="scale", help="results: bench/results/NAME.json")
    parser.add_argument("--steps", default=",".join(STEPS), help="which steps, in order")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # internal: run one step
    parser.add_argument("--mbox", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        result = run_step(args.step, args)
        result["peak_rss_mb"] = peak_rss_mb()
        print("RESULT " + json.dumps(result))
        return

    steps = [s for s in STEPS if s in args.steps.split(",")]
    results: dict[str, dict] = {}
    for n in [int(s) for s in args.sizes.split(",")]:
        home = temp_home(f"scale-{n}")
        mbox = home / "mail.mbox"
        started = time.perf_counter()
        build_mbox(mbox, n)
        print(f"{n:,} messages: mbox of {mbox.stat().st_size / 2**20:.0f} MiB built in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        env = {**os.environ, "PANZA_TRAINING__BATCH_SIZE": "4"}
        for step in steps:
            proc = subprocess.run(
                [sys.executable, __file__, "--step", step, "--mbox", str(mbox),
                 "--playback-sample", str(args.playback_sample),
                 "--train-steps", str(args.train_steps)],
                capture_output=True, text=True, env=env, cwd=ROOT / "bench",
            )  # fmt: skip
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode or line is None:
                raise SystemExit(f"{step} at {n} failed:\n{proc.stderr[-3000:]}")
            results[f"{n}:{step}"] = json.loads(line[len("RESULT ") :])
            r = results[f"{n}:{step}"]
            print(f"  {step}: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
        mbox.unlink()

    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for step in steps:
        row: list = [step]
        for n in sizes:
            r = results[f"{n}:{step}"]
            row += [r["seconds"], r["peak_rss_mb"]]
        if len(sizes) == 2:
            a, b = (results[f"{n}:{step}"] for n in sizes)
            row += [b["seconds"] / a["seconds"], b["peak_rss_mb"] / a["peak_rss_mb"]]
        rows.append(row)
    columns = ["step"]
    for n in sizes:
        columns += [f"{n}_s", f"{n}_peak_rss_mb"]
    if len(sizes) == 2:
        columns += ["time_ratio", "rss_ratio"]
    if "playback" in steps and "train" in steps:
        projected = [[n, results[f"{n}:playback"]["emails_per_min"],
                      results[f"{n}:playback"]["projected_selection_s"],
                      results[f"{n}:train"]["projected_epoch_s"]] for n in sizes]  # fmt: skip
        print("projected for the whole selection (from the measured samples)")
        table(["emails", "playback_emails_per_min", "playback_selection_s", "train_epoch_s"],
              projected)  # fmt: skip
        print()
    report(args.name, columns, rows, {"sizes": sizes, "steps": results,
                                      "playback_sample": args.playback_sample,
                                      "train_steps": args.train_steps})  # fmt: skip


if __name__ == "__main__":
    main()
