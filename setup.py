"""The one build step pyproject.toml cannot declare: copy the shipped data into the package.

``mappings/``, ``kibana/edgewatch.ndjson`` and ``config/edgewatch.example.toml`` stay at the top
of the repository, where people read and diff them (the layout the design fixes). A wheel must
carry them inside the package, though, or an installed ``edgewatch`` has no templates to set up
and no saved objects to import. So the build copies them to ``pipeline/_data/`` in the build
tree (never into the source tree), and ``pipeline.shipped`` reads them from there with
``importlib.resources``, or from the top-level folders in a checkout or editable install.

Everything else (metadata, dependencies, the console script) is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# (source in the repository, destination under pipeline/_data/) — kept in step with
# pipeline/shipped.py and MANIFEST.in (the sdist needs the same files to build this wheel).
SHIPPED = (
    ("mappings", "mappings"),
    ("kibana/edgewatch.ndjson", "kibana/edgewatch.ndjson"),
    ("config/edgewatch.example.toml", "edgewatch.example.toml"),
    ("config/edgewatch.alerts.yml", "edgewatch.alerts.yml"),
)


class BuildWithData(build_py):
    """``build_py`` that starts from an empty build folder and also copies the shipped data into
    ``<build_lib>/pipeline/_data``.

    Emptying it first matters: setuptools never removes what an earlier build left in
    ``build/lib``, and the wheel takes everything there, so a checkout once built with lab/ in
    the distribution (or with a module since deleted) would ship it again.
    """

    def run(self) -> None:
        editable = getattr(self, "editable_mode", False)  # editable: read in place, build nothing
        if not editable:
            shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()
        if editable:
            return
        target = Path(self.build_lib) / "pipeline" / "_data"
        for source, destination in SHIPPED:
            src, dst = ROOT / source, target / destination
            if src.is_dir():
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)


setup(cmdclass={"build_py": BuildWithData})
