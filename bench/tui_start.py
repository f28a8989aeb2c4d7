"""TUI start-up: a fresh Python process, from the first import to the first paint (on_ready),
for Panza's app on a store with the demo mailbox, and for an empty Textual app (the floor).
"""

from __future__ import annotations

import json
import subprocess
import sys

from common import ROOT, median, report, temp_home

PROBE = """
import time, asyncio
t0 = time.perf_counter()
{setup}
async def main():
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
asyncio.run(main())
print(json.dumps(ready[0] * 1000))
"""
PANZA = """
import json
from panza_tui.tui.app import PanzaApp
ready = []
class Timed(PanzaApp):
    def on_ready(self):
        ready.append(time.perf_counter() - t0)
app = Timed(account="demo")
"""
BARE = """
import json
from textual.app import App
from textual.widgets import Static
ready = []
class Timed(App):
    def compose(self):
        yield Static("hello")
    def on_ready(self):
        ready.append(time.perf_counter() - t0)
app = Timed()
"""


def main(runs: int = 7) -> None:
    temp_home("tui")
    from panza_core.store import Store
    from panza_tui.cli import demo
    from sync.importer import import_path

    with Store() as store:
        store.add_account("demo", [demo.ADDRESS])
        import_path(store, "demo", demo.mailbox())
    results = {}
    for name, setup in (("panza app (65 emails)", PANZA), ("bare textual app", BARE)):
        code = PROBE.format(setup=setup)
        results[name] = [
            json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, check=True, cwd=ROOT).stdout.strip())
            for _ in range(runs)
        ]  # fmt: skip
    panza, bare = (median(v) for v in results.values())
    rows = [[name, median(v), max(v)] for name, v in results.items()]
    rows.append(["ratio (panza / bare)", panza / bare, "-"])
    report(
        "tui_start",
        ["process start to first paint", "median_ms", "max_ms"],
        rows,
        {"runs": runs, "budget_ms": 1000},
    )


if __name__ == "__main__":
    main()
