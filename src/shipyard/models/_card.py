"""Model cards: what the registry knows about a model version, as Markdown or HTML.

A card is rendered from records only (the version, its registered model, the
training run, the dataset versions the run read, the audit trail of aliases),
so it is always current and never needs writing by hand. A section with
nothing recorded is left out, except the few a reader expects to see, which
say "none recorded".

Every string that a user supplied (names, descriptions, tags, params, run
names, dataset columns and values) goes through :func:`_text` or
:func:`_paragraph`, which backslash-escape the characters Markdown gives a
meaning to, so such a string can neither add Markdown (a link, a heading, a
table cell) nor raw HTML. The HTML card is that Markdown rendered by
markdown-it-py with raw HTML turned off as well.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.models import _api
from shipyard.store.entities import ModelVersion, RegisteredModel, Run

if TYPE_CHECKING:
    from shipyard.tracking import Client

__all__ = ["model_card"]

CARD_FORMATS = ("markdown", "html")
NONE_RECORDED = "None recorded."
#: Values shown per categorical column in a dataset's profile table.
TOP_VALUES_SHOWN = 3

# Characters that start inline Markdown anywhere in a line (emphasis, code,
# links, images, autolinks, raw HTML, entities, table cells): always escaped.
_INLINE = re.compile(r"([\\`*_\[\]<>!|~&])")
# What starts a block at the beginning of a line: headings, quotes, lists,
# setext underlines, thematic breaks ("*" and "_" are escaped already), and
# the "." or ")" of an ordered-list number.
_BLOCK_START = re.compile(r"^([#>+\-=]|\d+(?=[.)]))")


def model_card(uri: str, *, format: str = "markdown", client: Client | None = None) -> str:
    """The card of the version at ``uri`` (``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``).

    ``format="markdown"`` returns Markdown; ``format="html"`` a standalone
    HTML page with a little inline CSS, safe to serve as is.
    """
    if format not in CARD_FORMATS:
        raise InvalidInput(
            f"A model card's format is one of {', '.join(CARD_FORMATS)}; got {format!r}."
        )
    client, _ = _api._client_and_run(client)
    version = _api.resolve(uri, client=client)
    text = _markdown(version, client)
    return text if format == "markdown" else _html(version, text)


def _markdown(version: ModelVersion, client: Client) -> str:
    model = client.get_model(version.name)
    run = _training_run(version, client)
    sections = [
        [f"# {_text(version.name)} version {version.version}"],
        _about(version, model, run),
        _references(version, client),
        _training(version, run),
        _data(version, client),
        _signature(version),
        _environment(version),
        _formats(version),
        _lineage(version, run),
        _alias_history(version, client),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _training_run(version: ModelVersion, client: Client) -> Run | None:
    if version.run_id is None:
        return None
    try:
        return client.get_run(version.run_id)
    except NotFound:  # a run deleted since: the card says so rather than failing
        return None


# ------------------------------------------------------------------ sections


def _about(version: ModelVersion, model: RegisteredModel, run: Run | None) -> list[str]:
    lines = ["## About"]
    if version.description:
        lines += ["", _paragraph(version.description)]
    if model.description:
        lines += ["", f"**{_text(model.name)}**: {_paragraph(model.description)}"]
    facts = [
        ("Flavor", _text(version.flavor)),
        ("Status", _text(version.status)),
        ("Created", f"{_time(version.created_at)} by {_text(version.created_by)}"),
        ("Training run", _run_label(version, run) if version.run_id else NONE_RECORDED),
    ]
    lines += ["", *_table(("Field", "Value"), facts)]
    if version.tags:
        lines += ["", "Version tags:", "", *_table(("Tag", "Value"), _pairs(version.tags))]
    if model.tags:
        lines += ["", "Model tags:", "", *_table(("Tag", "Value"), _pairs(model.tags))]
    return lines


def _references(version: ModelVersion, client: Client) -> list[str]:
    uris = [version.uri, *(f"models:/{version.name}@{alias}" for alias in version.aliases)]
    ready = [v.version for v in client.model_versions(version.name) if v.status == "ready"]
    if ready and max(ready) == version.version:
        uris.append(f"models:/{version.name}@latest")
    return ["## Load it as", "", *(f"- {_text(uri)}" for uri in uris)]


def _training(version: ModelVersion, run: Run | None) -> list[str]:
    if version.run_id is None:
        return []
    if run is None:
        return ["## Training run", "", f"Run {_text(version.run_id)} is no longer in the store."]
    lines = [
        "## Training run",
        "",
        f"Run {_run_label(version, run)}, {_text(run.status)}.",
    ]
    lines += ["", "### Parameters", ""]
    lines += _table(("Name", "Value"), _pairs(run.params)) if run.params else [NONE_RECORDED]
    lines += ["", "### Metrics (latest)", ""]
    lines += (
        _table(
            ("Name", "Value", "Step"),
            [
                (_text(key), _number(metric.value), str(metric.step))
                for key, metric in sorted(run.metrics.items())
            ],
        )
        if run.metrics
        else [NONE_RECORDED]
    )
    return lines


def _data(version: ModelVersion, client: Client) -> list[str]:
    from shipyard.data._api import get_dataset

    lines = ["## Training data", ""]
    if not version.datasets:
        return [*lines, NONE_RECORDED]
    for name, number in version.datasets:
        label = f"{_text(name)}@{number}"
        try:
            found = get_dataset(name, number, client=client)
        except NotFound:
            lines += [f"### {label}", "", "No longer in the store.", ""]
            continue
        columns = found.profile.get("columns", {})
        lines += [
            f"### {label}",
            "",
            f"{found.rows:,} rows, {len(found.schema)} columns, `{found.digest}`.",
            "",
            *_table(
                ("Column", "Type", "Nulls", "Distinct", "Summary"),
                [
                    (
                        _text(item["name"]),
                        _text(item["type"]),
                        str(columns.get(item["name"], {}).get("nulls", "")),
                        _distinct(columns.get(item["name"], {})),
                        _summary(columns.get(item["name"], {})),
                    )
                    for item in found.schema
                ],
            ),
            "",
        ]
    return lines[:-1]


def _distinct(profile: Mapping[str, Any]) -> str:
    count = profile.get("distinct")
    if count is None:
        return ""
    return str(count) if profile.get("distinct_is_exact", True) else f"~{count}"


def _summary(profile: Mapping[str, Any]) -> str:
    """One cell: a numeric column's range and mean, a categorical one's top values."""
    kind = profile.get("kind")
    if kind == "numeric" and profile.get("min") is not None:
        mean = profile.get("mean")
        spread = f"{_number(profile['min'])} to {_number(profile['max'])}"
        return spread + ("" if mean is None else f", mean {_number(mean)}")
    if kind == "categorical" and profile.get("top_values"):
        top = profile["top_values"][:TOP_VALUES_SHOWN]
        return ", ".join(f"{_text(value)} ({count:,})" for value, count in top)
    if kind == "boolean" and profile.get("mean") is not None:
        return f"{profile['mean']:.1%} true"
    if kind == "temporal" and profile.get("min") is not None:
        return f"{_text(profile['min'])} to {_text(profile['max'])}"
    return ""


def _signature(version: ModelVersion) -> list[str]:
    from shipyard.models._signature import Signature

    if version.signature is None:
        return ["## Signature", "", NONE_RECORDED]
    signature = Signature.from_dict(version.signature)
    lines = ["## Signature", "", "### Inputs", ""]
    lines += _table(
        ("Name", "Type", "Nullable"),
        [
            (
                _text(spec.name),
                _text(spec.type)
                + ("" if spec.categories is None else f" ({len(spec.categories)} categories)"),
                "yes" if spec.nullable else "no",
            )
            for spec in signature.inputs
        ],
    )
    described = {
        method: spec for method, spec in signature.outputs.items() if isinstance(spec, Mapping)
    }
    if described:
        lines += ["", "### Outputs", ""]
        lines += _table(
            ("Method", "Type", "Shape"),
            [
                (_text(method), _text(spec.get("type", "")), _shape(spec.get("shape")))
                for method, spec in described.items()
            ],
        )
    classes = signature.outputs.get("classes")
    if classes:
        lines += ["", f"Classes: {', '.join(_text(c) for c in classes)}."]
    return lines


def _environment(version: ModelVersion) -> list[str]:
    packages = version.environment.get("packages") or {}
    python = version.environment.get("python")
    if not packages and not python:
        return []
    lines = ["## Environment", "", f"Python {_text(python or 'not recorded')}."]
    if packages:
        lines += ["", *_table(("Package", "Version"), _pairs(packages))]
    return lines


def _formats(version: ModelVersion) -> list[str]:
    rows = []
    for name, file in sorted(version.files.items()):
        checked = file.meta.get("checked")
        note = (
            f"checked on {checked['rows']} example rows, largest difference "
            f"{_number(checked['max_difference'])}"
            if isinstance(checked, Mapping)
            else ""
        )
        rows.append(
            (
                _text(name),
                _text(file.serialization),
                f"{file.size:,} bytes",
                f"`{file.digest}`",
                note,
            )
        )
    return [
        "## Stored formats",
        "",
        *_table(("Format", "Serialization", "Size", "Digest", "Note"), rows),
    ]


def _lineage(version: ModelVersion, run: Run | None) -> list[str]:
    if version.run_id is None:
        return []
    sources = [f"dataset {_text(name)}@{number}" for name, number in version.datasets]
    chain = [
        " + ".join(sources) if sources else "no recorded dataset",
        f"run {_run_label(version, run)}",
        _text(version.uri),
    ]
    return ["## Lineage", "", " → ".join(chain)]


def _alias_history(version: ModelVersion, client: Client) -> list[str]:
    moves = client.alias_history(version.name)
    lines = ["## Alias history", ""]
    if not moves:
        return [*lines, NONE_RECORDED]
    return lines + _table(
        ("Time", "Actor", "Alias", "Change"),
        [
            (
                _time(move["time"]),
                _text(move["actor"]),
                _text(move.get("alias", "")),
                f"{_version_or(move.get('previous'), 'none')} → "
                f"{_version_or(move.get('version'), 'removed')}",
            )
            for move in moves
        ],
    )


# ------------------------------------------------------------------- helpers


def _run_label(version: ModelVersion, run: Run | None) -> str:
    if run is None:
        return _text(version.run_id or "")
    return f"{_text(run.name)} ({_text(run.run_id)})" if run.name else _text(run.run_id)


def _shape(shape: Any) -> str:
    """``[-1, 2]`` as ``n x 2``: one value or row per input row, whatever the count."""
    if not isinstance(shape, list):
        return ""
    return " x ".join("n" if size == -1 else _text(size) for size in shape) or "scalar"


def _version_or(value: Any, missing: str) -> str:
    return missing if value is None else f"version {int(value)}"


def _pairs(mapping: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(_text(key), _text(value)) for key, value in sorted(mapping.items())]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A GFM table; cells are already escaped (``_text`` escapes ``|``)."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else _text(value)


def _text(value: Any) -> str:
    """``value`` as inline Markdown on one line that renders exactly as written, nothing more."""
    return _INLINE.sub(r"\\\1", " ".join(str(value).split()))


def _line(value: Any) -> str:
    """Like :func:`_text`, for the start of a line, where a block (heading, list) could begin."""
    return _BLOCK_START.sub(_escape_block_start, _text(value))


def _escape_block_start(match: re.Match[str]) -> str:
    marker = match[0]
    return marker + "\\" if marker[0].isdigit() else "\\" + marker  # "1\." but "\#"


def _paragraph(value: str) -> str:
    """A multi-line user text as Markdown paragraphs; line breaks kept, no markup possible."""
    return "\n".join(_line(line) for line in value.splitlines())


# ---------------------------------------------------------------------- html

_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2328; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #eaeef2; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
code { font-size: 90%; background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; }
"""


def _html(version: ModelVersion, markdown: str) -> str:
    from markdown_it import MarkdownIt

    # html=False: even text that slipped past _text could not become a tag.
    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = renderer.render(markdown)
    title = html.escape(f"{version.name} version {version.version}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title} · model card</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )
