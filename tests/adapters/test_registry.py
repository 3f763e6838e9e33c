"""Adapters are found by name: the bundled table, then entry points of installed packages.

The third-party package here is real package metadata (a .dist-info folder on
sys.path), the way a team's `pip install -e .` would register its adapter.
"""

import textwrap

import pytest

from adapters.base import Adapter
from adapters.registry import BUILTIN, ENTRY_POINT_GROUP, AdapterError, available, get_adapter


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    (tmp_path / "team_adapter.py").write_text(
        textwrap.dedent("""
        from adapters.referee import Float64Referee

        class TeamAdapter(Float64Referee):
            name = "team"

        class NotAnAdapter:
            pass
    """)
    )
    dist = tmp_path / "team_adapter-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: team-adapter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nteam = team_adapter:TeamAdapter\nbroken = team_adapter:NotAnAdapter\n"
        "tf_pinn = team_adapter:TeamAdapter\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_bundled_adapters_are_listed_first():
    assert list(available())[: len(BUILTIN)] == list(BUILTIN)


def test_an_installed_package_adds_its_adapter(installed_plugin):
    table = available()
    assert table["team"] == "team_adapter:TeamAdapter"
    backend = get_adapter("team")
    assert isinstance(backend, Adapter) and backend.name == "team"


def test_a_plugin_cannot_replace_a_bundled_name(installed_plugin):
    assert available()["tf_pinn"] == BUILTIN["tf_pinn"]


def test_a_plugin_that_builds_no_backend_is_refused(installed_plugin):
    with pytest.raises(AdapterError, match="not an adapters.base.Adapter"):
        get_adapter("broken")


def test_an_unknown_name_lists_what_exists():
    with pytest.raises(AdapterError, match=r"no backend adapter named 'nope'; available: .*tf_pinn.*torch_pinn"):
        get_adapter("nope")
