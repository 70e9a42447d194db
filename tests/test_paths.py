import pytest

from merlib.errors import DataLayoutError
from merlib.paths import resolve_data_root, results_dir, work_dir


def test_work_dir_is_the_checkout_build_folder_from_a_subfolder(tmp_path, monkeypatch):
    (tmp_path / "merlib").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("MERLIB_BUILD_DIR", raising=False)
    assert work_dir() == tmp_path.resolve() / "build"


def test_work_dir_outside_a_checkout_is_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MERLIB_BUILD_DIR", raising=False)
    monkeypatch.setenv("MERLIB_CACHE_DIR", str(tmp_path / "cache"))
    assert work_dir() == tmp_path / "cache"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("x")
    r = results_dir(tmp_path / "data", "smoke")
    assert r.parent.parent == tmp_path / "cache" / "results" and r.name == "smoke"


def test_resolve_data_root_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MERLIB_DATA_ROOT", raising=False)
    with pytest.raises(DataLayoutError, match="make data"):
        resolve_data_root(None)
    (tmp_path / "data" / "synthme").mkdir(parents=True)
    assert resolve_data_root(None) == (tmp_path / "data" / "synthme").resolve()
    monkeypatch.setenv("MERLIB_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert resolve_data_root(None) == (tmp_path / "elsewhere").resolve()
    assert resolve_data_root(tmp_path / "given") == (tmp_path / "given").resolve()


def test_known_fingerprint_is_used_without_walking_the_data(tmp_path, monkeypatch):
    from merlib.faces.cache import default_store_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MERLIB_BUILD_DIR", raising=False)
    monkeypatch.setenv("MERLIB_CACHE_DIR", str(tmp_path / "cache"))
    missing = tmp_path / "no-such-root"  # walking it would raise
    assert results_dir(missing, "smoke", fingerprint="abc123") == tmp_path / "cache" / "results" / "abc123" / "smoke"
    assert default_store_dir(missing, "abc123") == tmp_path / "cache" / "faces" / "abc123"


def test_build_dir_variable_wins_inside_a_checkout(tmp_path, monkeypatch):
    """``make book PROFILE=paper`` sets $MERLIB_BUILD_DIR: every cache and result of that
    book (results, aligned faces, generated roots) lands there, not in the checkout's build/."""
    from merlib.faces.cache import default_store_dir

    (tmp_path / "merlib").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MERLIB_BUILD_DIR", str(tmp_path / "books" / "paper-cuda" / "work"))
    own = (tmp_path / "books" / "paper-cuda" / "work").resolve()
    assert work_dir() == own
    assert results_dir(tmp_path / "none", "paper", fingerprint="abc123") == own / "results" / "abc123" / "paper"
    assert default_store_dir(tmp_path / "none", "abc123") == own / "faces" / "abc123"
    monkeypatch.setenv("MERLIB_BUILD_DIR", "")  # empty: unset, as make passes it for the default book
    assert work_dir() == tmp_path.resolve() / "build"
