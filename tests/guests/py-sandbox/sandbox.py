"""Test guest: what Python's own nondeterministic APIs return under weft,
and what a workflow that breaks the sandbox gets. The input names the
mode. (Modules are imported at the top: componentize-py bundles what the
app imports when it is built.)"""

import os
import random
import socket
import time
import uuid
from datetime import datetime, timezone

from weft_workflow import workflow


@workflow
def sandbox(ctx, mode):
    if mode == "clock-random":
        before = time.time()
        ctx.sleep(5)
        return {
            "time": before,
            "time_after_sleep": time.time(),
            "datetime": datetime.now(timezone.utc).isoformat(),
            "ctx_now": ctx.now().isoformat(),
            "random": random.random(),
            "randint": random.randint(0, 10**9),
            "uuid4": str(uuid.uuid4()),
        }
    if mode == "side-effect-random":
        # Randomness drawn inside a side effect (Python's generator, the OS
        # source, the SDK); what is drawn after it must replay the same.
        inside = ctx.side_effect(
            lambda: [random.random(), os.urandom(4).hex(), ctx.random()]
        )
        ctx.sleep(1)
        return {
            "inside": inside,
            "after": [random.random(), os.urandom(4).hex(), ctx.random(), str(uuid.uuid4())],
        }
    if mode == "open-file":
        with open("/etc/passwd") as f:
            return f.read()
    if mode == "socket":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("127.0.0.1", 9))
        return "connected"
    if mode == "sleep":
        time.sleep(1)
        return "slept"
    raise ValueError(f"unknown mode {mode!r}")
