"""Output files: check where they go before the work, write the metrics after it.

    output_path_problem(path, kind)  why a figure, metrics file or folder could not be written, or
                                     None: a bad path is a one-line command-line error before any
                                     training, not a traceback at the end of a long run
    repository_path(path)            how a metrics file records a path: relative to the repository
                                     when it lies inside it, so a committed file names its outputs
                                     the same way on every clone
    write_metrics_json(path, m)      the metrics as indented JSON (parent folders created)
"""
import json
import os
from pathlib import Path

OUTPUT_KINDS = ("file", "figure", "dir")


def output_path_problem(path, kind: str = "file") -> str | None:
    """Why `path` cannot be written, in a few words for a command-line error, or None if it can.

    kind: "file" (any file, e.g. a metrics JSON), "figure" (a file whose suffix matplotlib can
    write: .png, .pdf, .svg, .gif, ...) or "dir" (a folder that files will be written into).
    Nothing is created: the check looks at what exists. A missing parent folder is fine (the writers
    create it) unless the nearest existing ancestor is a regular file or a folder this user may not
    write to.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {list(OUTPUT_KINDS)}, got {kind!r}")
    path = Path(path)
    if kind == "figure":
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        formats = FigureCanvasAgg.get_supported_filetypes()
        if path.suffix.lower().lstrip(".") not in formats:
            return "a figure's name must end in one of " + ", ".join(
                "." + f for f in sorted(formats)
            )
    if path.exists():
        if kind == "dir":
            if not path.is_dir():
                return "exists and is not a folder"
            if not os.access(path, os.W_OK | os.X_OK):
                return "is a folder this user may not write to"
            return None
        if path.is_dir():
            return "is a folder, not a file"
        if not os.access(path, os.W_OK):
            return "exists and this user may not overwrite it"
        return None
    for ancestor in path.parents:  # the nearest one that exists decides
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"{ancestor} is a regular file, so nothing can be written under it"
            if not os.access(ancestor, os.W_OK | os.X_OK):
                return f"this user may not create anything in {ancestor}"
            return None
    return None


REPOSITORY = Path(__file__).resolve().parent.parent


def repository_path(path) -> str | None:
    """How a metrics file records a path: relative to the repository's root when it lies inside it
    ("plots/bandit.png", wherever the clone is and whatever the working directory was), absolute
    otherwise (a scratch file, not a committed one). None stays None."""
    if path is None:
        return None
    resolved = Path(path).resolve()
    return (
        str(resolved.relative_to(REPOSITORY))
        if resolved.is_relative_to(REPOSITORY)
        else str(resolved)
    )


def write_metrics_json(path, metrics: dict) -> Path:
    """Write `metrics` as indented JSON to `path` (parent folders created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return path
