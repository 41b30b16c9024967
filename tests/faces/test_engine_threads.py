"""The ASGI server runs sync views in threads and jobs run in threads of their own: the engine
is called from several threads at once. dlib's models are not safe for that (without the
engine's lock, concurrent calls crash the process), so it runs one call at a time per
process and gives each thread what a serial run gives.

In a process of its own: an engine that is not safe takes the interpreter down with it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CONCURRENT_RUN = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    import faces
    from tests.faces import portraits

    images = [
        np.asarray(portraits.astronaut()),
        np.asarray(portraits.grace_hopper()),
        np.asarray(portraits.rescaled(portraits.astronaut(), 0.75)),
        np.asarray(portraits.rotated(portraits.grace_hopper(), 8)),
    ]

    def run(n):
        image = images[n % len(images)]
        if n % 2:
            return faces.snapshot_face(image).embedding
        return faces.enrol_face(image).face.embedding

    calls = range(len(images))  # each image once, alternately enrolled and snapshot
    serial = [run(n) for n in calls]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(run, [*calls, *calls]))
    differing = [n for n, embedding in enumerate(concurrent) if not np.array_equal(embedding, serial[n % len(serial)])]
    print("differing:", differing)
    sys.exit(1 if differing else 0)
    """
)


def test_concurrent_calls_from_threads_give_what_serial_calls_give():
    run = subprocess.run([sys.executable, "-c", CONCURRENT_RUN], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-2000:]}"
    assert "differing: []" in run.stdout
