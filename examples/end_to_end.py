"""Shipyard end to end: from data to a served model that is watched in production.

    data ──► train ──► register ──► promote ──► serve ──► monitor ──► alert

1. data     register scikit-learn's breast cancer set (shipped with it, no
            download) as a versioned dataset, and read it back inside the run
            so the run records it as an input;
2. train    one parent run, and a nested child run per candidate model that
            records params, tags, a metric per cross-validation fold (the
            fold is the step), final test metrics (accuracy, ROC AUC, log
            loss) and artifacts (a predictions CSV and a report folder);
3. register each candidate becomes a version of the registered model
            ``breast-cancer``, with its signature inferred from the data;
4. promote  the best by ROC AUC gets the alias ``champion``; it is loaded
            back by alias (its digest verified first), scored on the test
            split, and exported to ONNX, which must predict the same;
5. compare  ask the store with ``shipyard.Client().search_runs`` for the best
            candidates by ROC AUC and print them;
6. serve    store the deployment ``breast-cancer`` (``models:/breast-cancer@champion``)
            and run ``shipyard serve --deployment breast-cancer`` on a free
            loopback port;
7. traffic  send six windows of 120 rows, each a random 120 of the 143
            test rows (drawn without replacement, so a window looks like the
            data the model was made on), in requests of 20 rows, and post each
            row's true label to /labels.
            **How the drift is made**: from window 4 on, the nine size
            features (radius, perimeter, area: mean, worst and error) are
            multiplied by 1.3, as if the imaging device had been recalibrated;
            the labels stay those of the rows drawn;
8. monitor  a monitor on the deployment (windows of 120 predictions, the
            dataset version as reference) and two alert rules; one monitor
            run evaluates the new windows and prints, per window, the drift
            share, the drifted columns and the live accuracy and ROC AUC, and
            the alerts that opened.

Run it with ``scripts/example`` (or ``python examples/end_to_end.py`` in the
project's venv). Everything lands in the embedded store under
``SHIPYARD_HOME`` (default ``./.shipyard``); run it again and the same
deployment and monitor carry on where they were. Browse it afterwards with
``shipyard runs list --experiment breast-cancer``, ``shipyard models show
breast-cancer``, ``shipyard monitors show breast-cancer`` or ``shipyard alerts list``.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard as sy
from shipyard.errors import AlreadyExists

EXPERIMENT = "breast-cancer"
DATASET = "breast-cancer"
MODEL = "breast-cancer"
SEED = 42
FOLDS = 5

DEPLOYMENT = "breast-cancer"
SERVE_TIMEOUT_S = 60
WINDOWS = 6
WINDOW_ROWS = 120
REQUEST_ROWS = 20
DRIFT_FROM = 4  # the first window whose inputs drift
DRIFT_FACTOR = 1.3
SIZE_FEATURES = [
    f"{kind} {feature}" for kind in ("mean", "worst") for feature in ("radius", "perimeter", "area")
] + [f"{feature} error" for feature in ("radius", "perimeter", "area")]
ALERT_RULES = {
    "inputs drifted": "drift_share > 0.25 for 2 windows",
    "accuracy fell": "accuracy < 0.9",
}

# Piped output (CI logs, tests) is not cut at 80 columns, so run ids stay whole.
console = Console(width=None if sys.stdout.isatty() else 120)


@dataclass(frozen=True)
class Data:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    version: str
    target_names: list[str]


@dataclass(frozen=True)
class Candidate:
    name: str
    family: str
    params: dict[str, Any]
    estimator: BaseEstimator


# ------------------------------------------------------------------------ 1. data


def register_data() -> str:
    """Store the data set as a dataset version (the same rows give the same version)."""
    bunch = load_breast_cancer(as_frame=True)
    version = sy.register_dataset(
        DATASET, bunch.frame, description="Wisconsin diagnostic breast cancer (scikit-learn)"
    )
    return f"{version.name}@{version.version}"


def load_data(version: str) -> Data:
    """Read the dataset version back (inside a run: recorded as its input) and split it."""
    frame = sy.load_dataset(version)
    features, target = frame.drop(columns=["target"]), frame["target"].to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(
        features, target, test_size=0.25, stratify=target, random_state=SEED
    )
    return Data(X_train, X_test, y_train, y_test, version, list(load_breast_cancer().target_names))


# ----------------------------------------------------------------------- 2. train


def candidates() -> list[Candidate]:
    lr_params = {"C": 0.5, "max_iter": 1000}
    rf_params = {"n_estimators": 100, "max_depth": 6, "min_samples_leaf": 2}
    return [
        Candidate(
            "logistic-regression",
            "linear",
            {"model": "LogisticRegression", "scaler": "StandardScaler", **lr_params},
            make_pipeline(StandardScaler(), LogisticRegression(**lr_params)),
        ),
        Candidate(
            "random-forest",
            "trees",
            {"model": "RandomForestClassifier", **rf_params},
            RandomForestClassifier(random_state=SEED, n_jobs=1, **rf_params),
        ),
    ]


def scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, proba >= 0.5)),
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "log_loss": float(log_loss(y_true, proba)),
    }


def cross_validate(candidate: Candidate, data: Data, progress: Progress, task: Any) -> None:
    """Log each fold's validation scores, with the fold number as the step."""
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    for step, (fit_idx, val_idx) in enumerate(folds.split(data.X_train, data.y_train), start=1):
        model = clone(candidate.estimator).fit(data.X_train.iloc[fit_idx], data.y_train[fit_idx])
        proba = model.predict_proba(data.X_train.iloc[val_idx])[:, 1]
        fold = scores(data.y_train[val_idx], proba)
        sy.log_metrics({f"cv_{key}": value for key, value in fold.items()}, step=step)
        progress.advance(task)


def write_artifacts(folder: Path, data: Data, proba: np.ndarray) -> tuple[Path, Path]:
    """A predictions CSV and a report folder (confusion matrix, classification report)."""
    predictions = folder / "predictions.csv"
    with predictions.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "label", "probability", "prediction"])
        for row, (label, p) in enumerate(zip(data.y_test, proba, strict=True)):
            writer.writerow([row, int(label), f"{p:.6f}", int(p >= 0.5)])

    report = folder / "report"
    report.mkdir()
    predicted = (proba >= 0.5).astype(int)
    matrix = confusion_matrix(data.y_test, predicted)
    names = data.target_names
    width = max(len(n) for n in names) + 2
    lines = [f"{'':{width}}" + "".join(f"{'pred ' + n:>{width + 5}}" for n in names)]
    for name, counts in zip(names, matrix, strict=True):
        lines.append(f"{name:{width}}" + "".join(f"{c:>{width + 5}}" for c in counts))
    (report / "confusion_matrix.txt").write_text("\n".join(lines) + "\n")
    (report / "classification_report.txt").write_text(
        classification_report(data.y_test, predicted, target_names=names)
    )
    return predictions, report


def train(
    candidate: Candidate, data: Data, progress: Progress, task: Any
) -> tuple[dict[str, float], int]:
    """One nested run: params, tags, per-fold metrics, test metrics, artifacts, a model version."""
    with sy.start_run(
        experiment=EXPERIMENT,
        name=candidate.name,
        tags={"role": "candidate", "family": candidate.family},
        nested=True,
    ):
        sy.log_params(candidate.params)
        sy.log_params({"cv_folds": FOLDS, "seed": SEED})
        cross_validate(candidate, data, progress, task)

        model = clone(candidate.estimator).fit(data.X_train, data.y_train)
        proba = model.predict_proba(data.X_test)[:, 1]
        final = scores(data.y_test, proba)
        sy.log_metrics(final)
        progress.advance(task)

        with tempfile.TemporaryDirectory(prefix="shipyard-example-") as tmp:
            predictions, report = write_artifacts(Path(tmp), data, proba)
            sy.log_artifact(predictions)
            sy.log_artifact(report)  # a folder: its files keep their paths below "report/"
        version = sy.log_model(
            model,
            MODEL,
            input_example=data.X_test.head(),
            description=f"{candidate.name}, trained on {data.version}",
        )
        progress.advance(task)
        return final, version.version


# --------------------------------------------------------------------- 4. promote


def promote(version: int, data: Data) -> None:
    """Make ``version`` the champion, load it back by alias, score it, export it to ONNX."""
    sy.set_alias(MODEL, "champion", version)
    champion = sy.load_model(f"models:/{MODEL}@champion")
    proba = champion.predict_proba(data.X_test)[:, 1]
    console.print(
        f"   {champion.uri} is @champion; loaded back by alias, test ROC AUC "
        f"{roc_auc_score(data.y_test, proba):.4f}"
    )
    sy.export_onnx(champion.uri)
    onnx = sy.load_model(champion.uri, format="onnx")
    gap = float(np.max(np.abs(onnx.predict_proba(data.X_test)[:, 1] - proba)))
    console.print(
        f"   exported to ONNX: largest probability difference on the test split {gap:.1e}"
    )


# --------------------------------------------------------------------- 3. compare


def show_best(parent_run_id: str) -> None:
    client = sy.Client()
    page = client.search_runs(
        EXPERIMENT,
        filter="tags.role = 'candidate'",
        order_by=["metrics.roc_auc DESC"],
        max_results=5,
    )
    table = Table(
        title=f"Best candidates in experiment {EXPERIMENT!r}",
        title_justify="left",
        caption="bold: trained just now",
        caption_justify="left",
    )
    table.add_column("run id", overflow="fold", min_width=12)
    table.add_column("model", overflow="fold")
    for key in ("roc_auc", "accuracy", "log_loss"):
        table.add_column(key, justify="right", no_wrap=True)
    for run in page.runs:
        table.add_row(
            run.run_id,
            run.name,
            *(f"{run.metrics[key].value:.4f}" for key in ("roc_auc", "accuracy", "log_loss")),
            style="bold" if run.parent_run_id == parent_run_id else None,
        )
    console.print(table)

    settings = client.settings
    console.print(f"Metadata store: [bold]{settings.uri}[/]")
    console.print(f"Artifacts:      [bold]{settings.artifacts}[/]")
    cli = shipyard_command()
    console.print(f"Look around:    {cli} runs list --experiment {EXPERIMENT}")
    console.print(f"                {cli} runs show {parent_run_id}")
    console.print(f"                {cli} models show {MODEL}")
    console.print(f"                {cli} models card models:/{MODEL}@champion")
    console.print(f"                {cli} lineage dataset:{DATASET}@1")


# ------------------------------------------------------------ 6. deploy and serve


@contextlib.contextmanager
def serving(progress_note: str) -> Iterator[str]:
    """Store the deployment, run ``shipyard serve --deployment`` on a free loopback port,
    wait until it is ready; stop it with SIGTERM (in-flight requests finish, the log is
    flushed) when done."""
    client = sy.Client()
    try:
        client.create_deployment(DEPLOYMENT, f"models:/{MODEL}@champion")
    except AlreadyExists:
        client.update_deployment(DEPLOYMENT, model=f"models:/{MODEL}@champion")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        str(venv_script() or "shipyard"),
        "serve",
        "--deployment",
        DEPLOYMENT,
        "--port",
        str(port),
    ]
    console.print(f"   {progress_note}: {' '.join(command[1:])}")
    url = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) as server,
    ):
        try:
            deadline = time.monotonic() + SERVE_TIMEOUT_S
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise SystemExit(f"shipyard serve stopped:\n{output}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"shipyard serve was not ready after {SERVE_TIMEOUT_S} s")
                time.sleep(0.2)
            yield url
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


# --------------------------------------------------------- 7. traffic that drifts


def traffic(data: Data) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """``WINDOWS`` windows of ``WINDOW_ROWS`` rows, drawn without replacement from the test
    split; from window ``DRIFT_FROM`` on, the size features read ``DRIFT_FACTOR`` times
    larger, as if the imaging device had been recalibrated. The true labels stay those of
    the rows drawn, so the model's accuracy should suffer where the inputs drift."""
    rng = np.random.default_rng(SEED)
    windows = []
    for number in range(1, WINDOWS + 1):
        picked = rng.choice(len(data.X_test), WINDOW_ROWS, replace=False)
        rows = data.X_test.iloc[picked].reset_index(drop=True)
        if number >= DRIFT_FROM:
            rows[SIZE_FEATURES] = rows[SIZE_FEATURES] * DRIFT_FACTOR
        windows.append((rows, data.y_test[picked]))
    return windows


def send(url: str, windows: list[tuple[pd.DataFrame, np.ndarray]]) -> int:
    """POST each window to /predict in requests of ``REQUEST_ROWS`` rows, then its labels
    to /labels (by prediction id); return the number of labels stored."""
    stored = 0
    with (
        httpx.Client(base_url=url, timeout=30) as http,
        Progress(
            TextColumn("   {task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("requests", total=WINDOWS * WINDOW_ROWS)
        for rows, labels in windows:
            ids: list[str] = []
            for start in range(0, len(rows), REQUEST_ROWS):
                part = rows.iloc[start : start + REQUEST_ROWS]
                body = {"columns": list(part.columns), "data": part.to_numpy().tolist()}
                answer = http.post("/predict", json=body)
                answer.raise_for_status()
                ids.extend(answer.json()["prediction_ids"])
                progress.advance(task, len(part))
            posted = [
                {"prediction_id": pid, "label": int(label)}
                for pid, label in zip(ids, labels, strict=True)
            ]
            answer = http.post("/labels", json=posted)
            answer.raise_for_status()
            stored += answer.json()["stored"]
    return stored


# ------------------------------------------------------------------ 8. monitor


def monitor(dataset: str) -> None:
    """Create the monitor and its alert rules (once), evaluate the new windows, print them."""
    client = sy.Client()
    with contextlib.suppress(AlreadyExists):  # made by an earlier run of the example
        sy.create_monitor(
            DEPLOYMENT, f"dataset:{dataset}", rows=WINDOW_ROWS, target="target", client=client
        )
    existing = {rule.name for rule in client.list_alert_rules(DEPLOYMENT)}
    for name, rule in ALERT_RULES.items():
        if name not in existing:
            client.create_alert_rule(DEPLOYMENT, rule, name=name)
    done = sy.run_monitor(DEPLOYMENT, client=client)
    table = Table(
        title=f"Monitor {DEPLOYMENT!r}: windows of {WINDOW_ROWS} predictions evaluated now",
        title_justify="left",
    )
    for column, justify in (
        ("window", "right"),
        ("rows", "right"),
        ("drift share", "right"),
        ("drifted columns", "left"),
        ("accuracy", "right"),
        ("ROC AUC", "right"),
    ):
        table.add_column(column, justify=justify, overflow="fold")
    for window in done.evaluated:
        drifted = [r.column for r in window.results if r.kind == "input" and r.drift]
        table.add_row(
            f"#{window.number}",
            str(window.rows),
            "-" if window.drift_share is None else f"{window.drift_share:.2f}",
            (", ".join(drifted[:4]) + (f" +{len(drifted) - 4}" if len(drifted) > 4 else "")) or "-",
            _metric(window.metrics, "accuracy"),
            _metric(window.metrics, "roc_auc"),
            style="red" if window.drift_share and window.drift_share > 0.3 else None,
        )
    console.print(table)
    for alert in done.alerts:
        colour = "red" if alert.status == "open" else "green"
        console.print(f"   [{colour}]alert {alert.status}[/]: {alert.message}")
    still_open = client.list_alerts(monitor=DEPLOYMENT, status="open")
    console.print(f"   open alerts on {DEPLOYMENT!r}: {len(still_open)}")


def _metric(metrics: Mapping[str, float], name: str) -> str:
    value = metrics.get(name)
    return "-" if value is None else f"{value:.3f}"


def venv_script() -> Path | None:
    """This venv's ``shipyard`` script, when the example runs in the venv that installed it."""
    script = Path(sys.executable).parent / "shipyard"
    return script if script.exists() else None


def shipyard_command() -> str:
    """How to call the CLI from here: ``shipyard`` if that is on PATH, else this venv's."""
    script = venv_script()
    if script is None or shutil.which("shipyard") == str(script):
        return "shipyard"
    return os.path.relpath(script) if script.is_relative_to(Path.cwd()) else str(script)


def main() -> int:
    started = time.perf_counter()
    console.rule("[bold]Shipyard example: from data to a served, monitored model")

    console.print("[bold]1. data[/]  load_breast_cancer() as a dataset, 75/25 stratified split")
    dataset = register_data()

    console.print("[bold]2. train[/] one nested run per candidate")
    models = candidates()
    with sy.start_run(
        experiment=EXPERIMENT, name="model-selection", tags={"role": "selection"}
    ) as parent:
        data = load_data(dataset)
        console.print(
            f"   dataset:{dataset}: {len(data.y_train)} training rows, {len(data.y_test)} "
            f"test rows, {data.X_train.shape[1]} features"
        )
        sy.log_params(
            {
                "dataset": f"dataset:{dataset}",
                "test_size": 0.25,
                "candidates": ",".join(c.name for c in models),
            }
        )
        results: dict[str, dict[str, float]] = {}
        versions: dict[str, int] = {}
        with Progress(
            TextColumn("   {task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            for candidate in models:
                task = progress.add_task(candidate.name, total=FOLDS + 2)
                results[candidate.name], versions[candidate.name] = train(
                    candidate, data, progress, task
                )
        best = max(results, key=lambda name: results[name]["roc_auc"])
        sy.set_tags({"best_model": best})
        sy.log_metric("best_roc_auc", results[best]["roc_auc"])
    console.print(f"   best: [bold]{best}[/] (test ROC AUC {results[best]['roc_auc']:.4f})")
    console.print(
        f"[bold]3. register[/] models:/{MODEL}/"
        + ", ".join(str(versions[c.name]) for c in models)
        + " (one version per candidate, signature inferred)"
    )

    console.print("[bold]4. promote[/] the best candidate's version")
    promote(versions[best], data)

    console.print("[bold]5. compare[/] search_runs(order_by=['metrics.roc_auc DESC'])")
    show_best(parent.run_id)

    console.print(f"[bold]6. serve[/] deployment {DEPLOYMENT!r} = models:/{MODEL}@champion")
    with serving("starting") as url:
        console.print(
            f"[bold]7. traffic[/] {WINDOWS} windows of {WINDOW_ROWS} rows to {url}/predict; "
            f"from window {DRIFT_FROM} on the size features are x{DRIFT_FACTOR} (drift)"
        )
        labelled = send(url, traffic(data))
        console.print(f"   {labelled} labels posted to /labels")
    console.print("[bold]8. monitor[/] evaluate the new windows, then the alert rules")
    monitor(dataset)
    console.print(f"Done in {time.perf_counter() - started:.1f}s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
