"""Where the files shipped with Tingxie lie (the demo and punctuation models, the icons, the
third-party notices): `resources/` at the root of a source checkout and of the app bundle
(packaging/tingxie.spec), but `engine/resources/` in an installed wheel, so that the wheel claims
no generic top-level `resources` package that another distribution could overwrite or uninstall
(pyproject.toml maps the folder there). Every path into them comes from `resource()`."""

from __future__ import annotations

from pathlib import Path

__all__ = ["resource", "resources_root"]

_PACKAGE = Path(__file__).resolve().parent


def resources_root(package: Path = _PACKAGE) -> Path:
    """The folder of shipped files for the `engine` package in `package`: the wheel's
    `engine/resources/` where it exists, else `resources/` beside the package (a checkout or the
    bundle; also the path an error names when neither exists)."""
    installed = package / "resources"
    return installed if installed.is_dir() else package.parent / "resources"


def resource(*parts: str) -> Path:
    """The path of a shipped file or folder, named as under resources/ in the source checkout:
    `resource("icons", "org.tingxie.Tingxie.svg")`."""
    return resources_root().joinpath(*parts)
