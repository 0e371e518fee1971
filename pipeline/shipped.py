"""Where the data edgewatch ships is: index templates, Kibana saved objects, the example config.

The repository keeps them at its top level (``mappings/``, ``kibana/``, ``config/``), where people
read and diff them. A wheel carries copies inside the package, under ``pipeline/_data/`` (setup.py
puts them there at build time), so an installed ``edgewatch`` finds them with
``importlib.resources`` wherever site-packages is. A checkout or an editable install has no
``_data``, and reads the top-level folders directly; nothing is looked up relative to the
current directory, so the answer does not depend on where the command is run.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# The checkout this module sits in (meaningful only when it is a checkout: pyproject.toml there).
SOURCE_ROOT = Path(__file__).resolve().parents[1]

# name → (path inside pipeline/_data of a wheel, path in the repository)
_LOCATIONS = {
    "mappings": ("mappings", "mappings"),
    "kibana": ("kibana/edgewatch.ndjson", "kibana/edgewatch.ndjson"),
    "example-config": ("edgewatch.example.toml", "config/edgewatch.example.toml"),
    "alert-rules": ("edgewatch.alerts.yml", "config/edgewatch.alerts.yml"),
}


def shipped_path(name: str) -> Path:
    """The file or folder ``name`` ("mappings", "kibana", "example-config", "alert-rules") on
    this install.

    The wheel's packaged copy when there is one, else the checkout's; the checkout's path is also
    what is returned when neither exists, so an error names a real place to look.
    """
    packaged, in_repo = _LOCATIONS[name]
    data = resources.files("pipeline").joinpath("_data", *packaged.split("/"))
    # An installed wheel is unpacked on disk, so the Traversable is a real path; anything else
    # (a zip import) has no file a cluster request or an import could be built from.
    if isinstance(data, Path) and data.exists():
        return data
    return SOURCE_ROOT / in_repo
