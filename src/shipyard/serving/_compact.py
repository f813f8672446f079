"""``python -m shipyard.serving._compact FOLDER DEPLOYMENT``: compact one prediction log.

Run by :func:`shipyard.serving._log.compact_in_child`; the blob store's location
comes on stdin as JSON (``{"artifacts", "s3_endpoint_url"}``), the number of
segments compacted goes to stdout, an error to stderr with a non-zero status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from shipyard.blobs import open_blob_store
    from shipyard.serving import _log

    if len(argv) != 2:
        print("usage: python -m shipyard.serving._compact FOLDER DEPLOYMENT", file=sys.stderr)
        return 2
    folder, deployment = argv
    where = json.loads(sys.stdin.read())
    blobs = open_blob_store(where["artifacts"], s3_endpoint_url=where["s3_endpoint_url"])
    try:
        print(_log.compact(Path(folder), blobs, deployment))
    except Exception as exc:  # one line for the server's log, not a traceback
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
