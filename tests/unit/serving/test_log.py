"""The prediction log: framed records, group commit, compaction, reading back, labels."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from shipyard.errors import InvalidInput
from shipyard.serving import _log, log_labels, predictions
from unit.serving.conftest import make_client


def record(n: int, t: int = 1_700_000_000_000, version: str = "models:/credit/1") -> dict:
    return {
        "k": "p",
        "t": t,
        "v": version,
        "ids": _log.new_ids(n, t),
        "in": {"income": [float(i) for i in range(n)], "age": list(range(n))},
        "out": [i % 2 for i in range(n)],
        "proba": [[0.5, 0.5]] * n,
        "ms": 1.5,
    }


def test_frames_round_trip_and_a_torn_tail_is_ignored() -> None:
    records = [record(2), record(1)]
    data = b"".join(_log.encode(r) for r in records)
    assert list(_log.decode(data)) == records
    for cut in range(1, len(_log.encode(records[1]))):
        assert list(_log.decode(data[:-cut])) == records[:1]
    corrupt = bytearray(data)
    corrupt[-3] ^= 0xFF
    assert list(_log.decode(bytes(corrupt))) == records[:1]


def test_ids_are_unique_and_sort_by_time() -> None:
    ids = _log.new_ids(10_000, 5) + _log.new_ids(10_000, 6)
    assert len(set(ids)) == 20_000
    assert max(ids[:10_000]) < min(ids[10_000:])


def test_concurrent_appends_share_syncs_and_all_reach_the_disk(tmp_path: Path) -> None:
    log = _log.PredictionLog(tmp_path / "log")

    async def main() -> None:
        await asyncio.gather(*(log.append(record(1)) for _ in range(200)))

    asyncio.run(main())
    assert log.written == 200
    assert log.syncs < 200  # grouped
    log.close()
    segments = list((tmp_path / "log" / "wal").iterdir())
    assert [p.suffix for p in segments] == [".seg"]  # closed on close
    assert len(list(_log.decode(segments[0].read_bytes()))) == 200


def test_append_sync_from_many_threads(tmp_path: Path) -> None:
    log = _log.PredictionLog(tmp_path / "log")
    threads = [
        threading.Thread(target=lambda: log.append_sync([record(1) for _ in range(20)]))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    snapshot = _log._snapshot(tmp_path / "log")
    assert len(snapshot.records) == 160


def test_a_sync_waits_for_requests_still_being_answered(tmp_path: Path) -> None:
    log = _log.PredictionLog(tmp_path / "log", linger=30.0)

    async def main() -> None:
        first, second = log.expect(), log.expect()
        early = asyncio.create_task(log.append_frames([_log.encode(record(1))], ticket=first))
        await asyncio.sleep(0.1)
        assert not early.done()  # the second request is still being answered
        await log.append_frames([_log.encode(record(2))], ticket=second)
        await early

    asyncio.run(main())
    assert (log.written, log.syncs) == (2, 1)
    log.close()


@pytest.mark.parametrize("others", ["none", "cancelled"])
def test_a_request_nobody_else_is_answered_beside_never_waits(tmp_path: Path, others: str) -> None:
    log = _log.PredictionLog(tmp_path / "log", linger=30.0)

    async def main() -> None:
        ticket = log.expect()
        if others == "cancelled":
            other = log.expect()
            asyncio.get_running_loop().call_later(0.05, other.cancel)  # refused, say
        await asyncio.wait_for(log.append_frames([_log.encode(record(1))], ticket=ticket), 10)

    asyncio.run(main())
    assert log.written == 1
    log.close()


def test_small_records_written_by_the_loop_and_large_ones_by_the_thread_all_land(
    tmp_path: Path,
) -> None:
    log = _log.PredictionLog(tmp_path / "log")
    big = _log.encode(record(20_000))
    assert len(big) > _log.LOOP_WRITE_BYTES

    async def main() -> None:
        tickets = [log.expect() for _ in range(5)]
        await asyncio.gather(
            *(log.append_frames([_log.encode(record(1))], ticket=t) for t in tickets[:4]),
            log.append_frames([big], ticket=tickets[4]),
        )

    asyncio.run(main())
    log.append_sync([record(2)])
    log.close()
    segments = sorted((tmp_path / "log" / "wal").iterdir())
    rows = sorted(len(r["ids"]) for path in segments for r in _log.decode(path.read_bytes()))
    assert rows == [1, 1, 1, 1, 2, 20_000]
    assert log.written == 6


@pytest.mark.parametrize("writer", ["thread", "event loop"])
def test_a_write_error_fails_the_waiters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    from shipyard.errors import StoreUnavailable

    log = _log.PredictionLog(tmp_path / "log")

    def append() -> None:
        if writer == "thread":
            log.append_sync([record(1)])
        else:
            asyncio.run(log.append_frames([_log.encode(record(1))]))

    write = os.write

    def broken(fd: int, data: memoryview) -> int:
        if fd == log._fd:  # the segment's writes (O_DSYNC: each one is also the sync)
            raise OSError(28, "No space left on device")
        return write(fd, data)

    monkeypatch.setattr(os, "write", broken)
    with pytest.raises(StoreUnavailable, match="No space left"):
        append()
    monkeypatch.undo()
    log.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        append()


def test_compaction_keeps_every_row_and_reading_is_the_same(tmp_path: Path) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    folder = _log.log_folder(client.settings.home, "credit")
    hour = 3_600_000
    log = _log.PredictionLog(folder)
    log.append_sync([record(3, t=10 * hour + 5), record(2, t=11 * hour + 7)])
    log.rotate()
    log.append_sync([record(1, t=11 * hour + 9)])  # stays in the open segment
    before = predictions("credit", client=client)
    assert before.num_rows == 6

    assert _log.compact(folder, client.blobs, "credit") == 1
    index = json.loads((folder / "index.json").read_text())
    assert sorted(f["hour"] for f in index["files"]) == ["1970-01-01T10", "1970-01-01T11"]
    assert all(client.blobs.exists(f["digest"]) for f in index["files"])
    after = predictions("credit", client=client)
    assert after.equals(before)
    assert after.schema.field("time").type == pa.timestamp("ms", tz="UTC")
    assert after.column("inputs.age").to_pylist() == [0, 1, 2, 0, 1, 0]

    window = predictions("credit", start=11 * hour, end=11 * hour + 8, client=client)
    assert window.num_rows == 2
    since = predictions(
        "credit", start=dt.datetime.fromtimestamp(11 * hour / 1000, dt.UTC), client=client
    )
    assert since.num_rows == 3
    log.close()
    assert _log.compact(folder, client.blobs, "credit") == 1
    assert predictions("credit", client=client).equals(before)
    assert not list((folder / "wal").iterdir())


def test_a_server_compacts_in_a_child_process_and_only_when_a_segment_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    folder = _log.log_folder(client.settings.home, "credit")
    log = _log.PredictionLog(folder)
    log.append_sync([record(3), record(2, version="models:/credit/2")])
    before = predictions("credit", client=client)

    started: list[list[str]] = []
    real_run = __import__("subprocess").run
    monkeypatch.setattr(
        "subprocess.run", lambda command, **kw: started.append(command) or real_run(command, **kw)
    )
    assert _log.compact_in_child(folder, client, "credit") == 0  # only an open, live segment
    assert started == []
    log.rotate()
    assert _log.compact_in_child(folder, client, "credit") == 1
    assert len(started) == 1
    assert predictions("credit", client=client).equals(before)
    log.close()


def test_a_broken_blob_store_fails_a_child_compaction_with_its_reason(tmp_path: Path) -> None:
    from shipyard.errors import StoreUnavailable

    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    folder = _log.log_folder(client.settings.home, "credit")
    log = _log.PredictionLog(folder)
    log.append_sync([record(1)])
    log.rotate()
    log.close()
    (folder / "index.json").write_text("{not json")
    with pytest.raises(StoreUnavailable, match="index"):
        _log.compact_in_child(folder, client, "credit")
    assert any(p.suffix == ".seg" for p in (folder / "wal").iterdir())  # nothing lost


def test_an_open_segment_of_a_dead_writer_is_compacted(tmp_path: Path) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    folder = _log.log_folder(client.settings.home, "credit")
    (folder / "wal").mkdir(parents=True)
    torn = _log.encode(record(2)) + _log.encode(record(1))[:-4]
    (folder / "wal" / "999-dead-000001.open").write_bytes(torn)
    live = _log.PredictionLog(folder)
    live.append_sync([record(4)])  # its own .open is locked: left alone
    assert _log.compact(folder, client.blobs, "credit") == 1
    assert [p.suffix for p in (folder / "wal").iterdir()] == [".open"]
    assert predictions("credit", client=client).num_rows == 6
    live.close()


def test_a_crash_between_index_and_delete_is_repaired(tmp_path: Path) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    folder = _log.log_folder(client.settings.home, "credit")
    log = _log.PredictionLog(folder)
    log.append_sync([record(2)])
    log.close()
    segment = next((folder / "wal").iterdir())
    kept = segment.read_bytes()
    _log.compact(folder, client.blobs, "credit")
    segment.write_bytes(kept)  # as if the unlink never happened
    assert predictions("credit", client=client).num_rows == 2  # not counted twice
    _log.compact(folder, client.blobs, "credit")
    assert not segment.exists()


def test_labels_join_and_unknown_ids_are_reported(tmp_path: Path) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    folder = _log.log_folder(client.settings.home, "credit")
    log = _log.PredictionLog(folder)
    first = record(3)
    log.append_sync([first])
    log.close()
    ids = first["ids"]
    answer = log_labels(
        "credit",
        [
            {"prediction_id": ids[0], "label": 1},
            {"prediction_id": "nope", "label": 0},
            {"prediction_id": ids[0], "label": 0},  # the last one wins
        ],
        client=client,
    )
    assert answer == {"stored": 2, "unknown": ["nope"]}
    table = predictions("credit", client=client)
    assert table.column("label").to_pylist() == [0, None, None]
    assert table.column("label_time").null_count == 2
    _log.compact(folder, client.blobs, "credit")
    log_labels("credit", [{"prediction_id": ids[2], "label": 1}], client=client)
    assert predictions("credit", client=client).column("label").to_pylist() == [0, None, 1]
    assert "label" not in predictions("credit", labels=False, client=client).column_names


@pytest.mark.parametrize(
    "labels",
    [
        [],
        {"prediction_id": "a"},
        [{"prediction_id": "a"}],
        [{"prediction_id": 3, "label": 1}],
        [{"prediction_id": "a", "label": [1]}],
        [{"prediction_id": "a", "label": 1, "x": 2}],
    ],
)
def test_malformed_labels_are_refused(tmp_path: Path, labels: object) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    with pytest.raises(InvalidInput):
        log_labels("credit", labels, client=client)  # type: ignore[arg-type]


def test_a_bad_deployment_name_is_refused(tmp_path: Path) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    with pytest.raises(InvalidInput, match="deployment name"):
        predictions("../etc", client=client)


def test_an_empty_log_reads_as_an_empty_table(tmp_path: Path) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    table = predictions("nothing", client=client)
    assert table.num_rows == 0
    assert {"prediction_id", "time", "model_version", "label"} <= set(table.column_names)
    assert not (client.settings.home / "predictions" / "nothing" / "wal").exists()


def test_versions_with_other_columns_read_as_one_table(tmp_path: Path) -> None:
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    folder = _log.log_folder(client.settings.home, "credit")
    log = _log.PredictionLog(folder)
    other = record(1, t=1_700_000_000_500, version="models:/credit/2")
    other["in"] = {"income": [2.5], "region": ["north"]}
    log.append_sync([record(1), other])
    log.close()
    table = predictions("credit", client=client)
    assert table.column("inputs.region").to_pylist() == [None, "north"]
    assert table.column("inputs.age").to_pylist() == [0, None]
    assert table.column("model_version").to_pylist() == ["models:/credit/1", "models:/credit/2"]
