"""run() freezes what start-up made once the services are up, so the collector never rescans it and the
first requests do not pay a full collection of every imported module."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc, os, signal, threading
from shared.app import run

class App:
    name = "probe"
    def start(self):
        print("frozen at start", gc.get_freeze_count(), flush=True)
        def later():
            print("frozen while serving", gc.get_freeze_count(), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Timer(0.3, later).start()
    def stop(self):
        print("stopped", flush=True)

run([App()])
"""


def test_run_freezes_the_start_up_heap_once_the_services_are_up():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=True
    )
    lines = dict(line.rsplit(" ", 1) for line in out.stdout.splitlines() if line[-1].isdigit())
    assert int(lines["frozen at start"]) == 0
    assert int(lines["frozen while serving"]) > 10_000
    assert "stopped" in out.stdout
