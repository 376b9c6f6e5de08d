"The README cannot drift: its Python example runs, its commands exist, its tutorials exist."
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_python_example_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CLEAN" in proc.stdout and (tmp_path / "out").is_dir()


def test_cli_table_matches_the_parser():
    from pseudicom.cli import _parser
    commands = set(_parser()._subparsers._group_actions[0].choices)
    listed = set(re.findall(r"^\| `pseudicom (\w+)", README, re.M))
    assert listed == commands, (listed, commands)


def test_the_two_commands_and_tutorials_are_there():
    assert 'pip install -e ".[dev]" && pseudicom demo' in README and "bash .ci/run" in README
    for name in re.findall(r"^\| `(\d\d_\w+)` \|", README, re.M):
        assert (ROOT / "tutorials" / f"{name}.ipynb").is_file(), name


def test_a_wheel_carries_the_tutorials():
    "pyproject ships every tutorial as data files, where `pseudicom demo` looks for them after a pip install."
    import tomllib
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data == {"share/pseudicom/tutorials": ["tutorials/*.ipynb", "tutorials/README.md"]}, data
    assert "share/pseudicom/tutorials" in README
