"""The set-up promises of the README hold: same pins everywhere, CI runs the test command."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["dev"]
    pins = {}
    for dep in deps:
        name, _, version = dep.partition("==")
        assert version, f"pyproject.toml: {dep!r} is not pinned with =="
        pins[name.lower()] = version
    return pins


def test_environment_yml_has_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    conda_pins = dict(d.lower().split("==") for d in pip_section if "==" in d)
    assert conda_pins == _pyproject_pins()


def test_readme_commands_are_make_targets_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^book:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_book_builds_with_warnings_as_errors():
    assert "jupyter-book build -W -n --keep-going" in (ROOT / "Makefile").read_text()


def test_make_book_refuses_a_missing_data_root_in_one_line(tmp_path):
    import subprocess

    missing = tmp_path / "no-such-root"
    run = subprocess.run(["make", "-n", "-C", str(ROOT), "book", f"DATA_ROOT={missing}"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if "***" in line]
    assert len(errors) == 1 and f"DATA_ROOT: no such folder '{missing}'" in errors[0]
    assert "Traceback" not in run.stderr + run.stdout
