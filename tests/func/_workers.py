"""Child-process entry points for the reliability tests.

Run as a script, never imported by the children::

    python tests/func/_workers.py <command> [args...]

Each child finds its store and settings in the environment (``SHIPYARD_URI``,
``SHIPYARD_HOME``, ``SHIPYARD_FLUSH_*``, ``SHIPYARD_HEARTBEAT_*``), exactly as
a user's training script would. Children report to the parent on stdout, one
line per fact, flushed at once. Every wait is bounded, so a child whose parent
vanished exits on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: No child lives longer than this, whatever happens to its parent.
MAX_LIFETIME_S = 120.0


def say(*parts: object) -> None:
    print(*parts, flush=True)


def barrier(folder: str, name: str) -> None:
    """Announce readiness with a file, then wait for the parent's ``go`` file."""
    root = Path(folder)
    (root / f"ready-{name}").touch()
    go = root / "go"
    deadline = time.monotonic() + MAX_LIFETIME_S
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("barrier: no go signal from the parent")
        time.sleep(0.002)


def wait_for_parent() -> None:
    """Block until the parent writes a line or closes our stdin (bounded by its timeout)."""
    sys.stdin.readline()


# ---------------------------------------------------------------------------- commands


def log_many(args: argparse.Namespace) -> None:
    """One run, ``points`` fluent log_metric calls, started together with the others."""
    import shipyard

    barrier(args.barrier, str(args.worker))
    started = time.time()
    with shipyard.start_run(experiment="stress", name=f"worker-{args.worker}") as run:
        for step in range(args.points):
            shipyard.log_metric("loss", args.worker * 1_000_000 + step, step=step)
    say(json.dumps({"run_id": run.run_id, "start": started, "end": time.time()}))


def upgrade(args: argparse.Namespace) -> None:
    """Open the (fresh) store and migrate it, together with the others."""
    import shipyard

    client = shipyard.Client()
    barrier(args.barrier, str(args.worker))
    say(json.dumps(client.upgrade_db()))


def flush_until_killed(args: argparse.Namespace) -> None:
    """Log forever; after each flush (and a tag, an audited write) print the count."""
    import shipyard

    run = shipyard.start_run(experiment="crash", name=args.name)
    say(run.run_id)
    deadline = time.monotonic() + MAX_LIFETIME_S
    step = 0
    while time.monotonic() < deadline:
        shipyard.log_metric("x", float(step), step=step)
        step += 1
        if step % args.every == 0:
            shipyard.flush()
            shipyard.set_tag("flushed", step)
            say(step)
    sys.exit("flush_until_killed: never killed")


def start_runs(args: argparse.Namespace) -> None:
    """Together with the others, start (and end) one run in each of several new experiments."""
    import shipyard

    barrier(args.barrier, str(args.worker))
    run_ids = []
    for n in range(args.experiments):
        with shipyard.start_run(experiment=f"shared-{n}", name=f"worker-{args.worker}") as run:
            shipyard.log_metric("worker", args.worker)
        run_ids.append(run.run_id)
    say(json.dumps(run_ids))


def hold(args: argparse.Namespace) -> None:
    """Start a run, log ``points`` (buffered), report the run id, wait for the parent.

    Points are logged a moment after the run started, so a background flush
    that runs when the flusher thread starts finds nothing to write yet.
    """
    import shipyard

    if args.bare:
        run = shipyard.start_run(experiment="lifecycle", name=args.name)
        time.sleep(args.settle)
        for step in range(args.points):
            shipyard.log_metric("m", float(step), step=step)
        say(run.run_id)
        wait_for_parent()
        return  # the run is ended at exit, by atexit
    with shipyard.start_run(experiment="lifecycle", name=args.name) as run:
        time.sleep(args.settle)
        for step in range(args.points):
            shipyard.log_metric("m", float(step), step=step)
        say(run.run_id)
        wait_for_parent()


def fail(args: argparse.Namespace) -> None:
    """A ``with`` block that raises after logging ``points``."""
    import shipyard

    with shipyard.start_run(experiment="lifecycle", name=args.name) as run:
        say(run.run_id)
        for step in range(args.points):
            shipyard.log_metric("m", float(step), step=step)
        raise RuntimeError("the training script failed")


def register_models(args: argparse.Namespace) -> None:
    """``threads`` threads each register one version of model ``shared`` at the same moment."""
    import threading

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import shipyard

    rng = np.random.default_rng(args.worker)
    features = rng.normal(size=(40, 3))
    model = LogisticRegression().fit(features, features[:, 0] > 0)
    client = shipyard.Client()
    client.upgrade_db()
    versions: list[int] = []
    errors: list[str] = []
    start = threading.Barrier(args.threads)

    def register() -> None:
        start.wait()
        try:
            versions.append(shipyard.log_model(model, "shared", client=client).version)
        except Exception as exc:  # reported to the parent, which fails the test
            errors.append(f"{type(exc).__name__}: {exc}")

    barrier(args.barrier, str(args.worker))
    threads = [threading.Thread(target=register) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(MAX_LIFETIME_S)
    say(json.dumps({"versions": versions, "errors": errors}))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="_workers")
    commands = parser.add_subparsers(dest="command", required=True)

    cmd = commands.add_parser("log_many")
    cmd.add_argument("--barrier", required=True)
    cmd.add_argument("--worker", type=int, required=True)
    cmd.add_argument("--points", type=int, required=True)
    cmd.set_defaults(func=log_many)

    cmd = commands.add_parser("upgrade")
    cmd.add_argument("--barrier", required=True)
    cmd.add_argument("--worker", type=int, required=True)
    cmd.set_defaults(func=upgrade)

    cmd = commands.add_parser("start_runs")
    cmd.add_argument("--barrier", required=True)
    cmd.add_argument("--worker", type=int, required=True)
    cmd.add_argument("--experiments", type=int, required=True)
    cmd.set_defaults(func=start_runs)

    cmd = commands.add_parser("flush_until_killed")
    cmd.add_argument("--name", required=True)
    cmd.add_argument("--every", type=int, required=True)
    cmd.set_defaults(func=flush_until_killed)

    cmd = commands.add_parser("hold")
    cmd.add_argument("--name", required=True)
    cmd.add_argument("--points", type=int, default=0)
    cmd.add_argument("--bare", action="store_true", help="start_run() without a with block")
    cmd.add_argument("--settle", type=float, default=0.3, help="seconds between start and log")
    cmd.set_defaults(func=hold)

    cmd = commands.add_parser("fail")
    cmd.add_argument("--name", required=True)
    cmd.add_argument("--points", type=int, default=0)
    cmd.set_defaults(func=fail)

    cmd = commands.add_parser("register_models")
    cmd.add_argument("--barrier", required=True)
    cmd.add_argument("--worker", type=int, required=True)
    cmd.add_argument("--threads", type=int, required=True)
    cmd.set_defaults(func=register_models)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
