"""engine.shipped finds the shipped files in each layout: resources/ at the root of a checkout (and
of the app bundle), engine/resources/ in an installed wheel. tests/test_packaging.py installs a
real wheel and checks what its code finds."""

from __future__ import annotations

from pathlib import Path

from engine.shipped import resource, resources_root

ROOT = Path(__file__).resolve().parents[1]


def test_a_checkout_finds_resources_beside_the_package(tmp_path):
    (tmp_path / "engine").mkdir()
    (tmp_path / "resources").mkdir()
    assert resources_root(tmp_path / "engine") == tmp_path / "resources"


def test_an_installed_wheel_finds_them_inside_the_package(tmp_path):
    """A `resources` of another distribution beside the package is not taken for Tingxie's."""
    (tmp_path / "engine" / "resources").mkdir(parents=True)
    (tmp_path / "resources").mkdir()
    assert resources_root(tmp_path / "engine") == tmp_path / "engine" / "resources"


def test_where_neither_is_the_checkout_path_is_named(tmp_path):
    """A missing resource is then reported (the About dialog, the demo model's hint) at the
    path a source checkout or the bundle would hold it."""
    (tmp_path / "engine").mkdir()
    assert resources_root(tmp_path / "engine") == tmp_path / "resources"


def test_this_checkout_names_its_resources_folder():
    config = resource("demo-model", "config.json")
    assert config == ROOT / "resources" / "demo-model" / "config.json"
    assert config.is_file()
