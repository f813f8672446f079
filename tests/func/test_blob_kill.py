"""A local blob store survives SIGKILL mid-put: no partial blob ever has a final name."""

from __future__ import annotations

import contextlib
import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.blobs._local import LocalBlobStore

BLOB_BYTES = 200 * 1024 * 1024
# One put takes about a second here: most of it is writing, then fsync and the
# rename, a short window a uniform delay would rarely hit. So each trial waits
# for the temp file to reach a random point, or its full size (then the writer
# is fsyncing and renaming), and kills after a further random delay.
# (phase, longest further delay in seconds)
TRIALS = [("writing", 0.1), ("writing", 0.0), ("publishing", 0.3), ("publishing", 0.05)]


# Puts 200 MB blobs from a generated stream, one after another, until killed;
# prints "done <digest>" after each complete put.
CHILD = """
import os, sys
from shipyard.blobs._local import LocalBlobStore

class Generated:
    def __init__(self, size):
        self.left = size
    def read(self, size):
        size = min(size, self.left)
        self.left -= size
        return os.urandom(size)

store = LocalBlobStore(sys.argv[1])
print("ready", flush=True)
while True:
    info = store.put(Generated(int(sys.argv[2])))
    print("done", info.digest, flush=True)
"""


def _kill_mid_put(root: Path, phase: str, max_delay: float, rng: random.Random) -> list[str]:
    """Run the writer, SIGKILL it in ``phase`` of its first put; return the digests it completed."""
    old_temps = set((root / "tmp").glob("*")) if (root / "tmp").exists() else set()
    threshold = BLOB_BYTES if phase == "publishing" else int(BLOB_BYTES * rng.uniform(0.05, 0.95))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(BLOB_BYTES)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        _wait_for_temp_file(root / "tmp", old_temps, threshold)
        time.sleep(rng.uniform(0.0, max_delay))
        child.send_signal(signal.SIGKILL)
        output, _ = child.communicate(timeout=30)
    finally:
        child.kill()  # a no-op once it is dead; stops it if an assertion failed first
        child.wait()
    assert child.returncode == -signal.SIGKILL, "the writer ended before it was killed"
    return [line.split()[1] for line in output.splitlines() if line.startswith("done ")]


def _wait_for_temp_file(tmp_dir: Path, old_temps: set[Path], size: int) -> None:
    """Return once a new temp file in ``tmp_dir`` holds at least ``size`` bytes (or 10 s passed)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for temp in set(tmp_dir.glob("*")) - old_temps if tmp_dir.exists() else ():
            with contextlib.suppress(FileNotFoundError):  # renamed or dropped meanwhile
                if temp.stat().st_size >= size:
                    return
        time.sleep(0.001)
    raise AssertionError(f"no temp file reached {size} bytes in {tmp_dir} within 10 s")


def _sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@pytest.mark.slow
def test_sigkill_mid_put_never_leaves_a_partial_blob(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    completed: list[str] = []
    for phase, max_delay in TRIALS:
        completed += _kill_mid_put(root, phase, max_delay, rng)

    blobs = [path for path in (root / "sha256").rglob("*") if path.is_file()]
    for path in blobs:
        name = path.name
        assert path.relative_to(root).as_posix() == f"sha256/{name[:2]}/{name[2:4]}/{name}"
        assert _sha256_file(path) == name, f"partial blob {path} (seed {seed})"
    # A kill between the rename and the "done" line may leave one unreported blob: fine.
    assert {d.removeprefix("sha256:") for d in completed} <= {blob.name for blob in blobs}
    stray = [p for p in root.rglob("*") if p.is_file() and p not in blobs]
    assert all(p.parent == root / "tmp" for p in stray), f"files outside tmp/: {stray}"
    assert stray, "no kill landed mid-write: the test proved nothing"

    store = LocalBlobStore(root)
    for digest in completed:
        store.verify(digest)
    assert store.get(store.put(b"still works").digest) == b"still works"
