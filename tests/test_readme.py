"""The README's code blocks run as written (a README that lies is a bug)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_python_blocks():
    assert BLOCKS, "the README's quick start is missing"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": "readme"})


def test_the_two_commands_ci_runs_are_in_the_readme():
    """.ci/run runs the ```sh blocks after `<!-- ci -->` lines: install + demo, then
    install + the test command."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- ci -->\s*```sh\n(.*?)```", text, re.S)
    assert [b.splitlines() for b in blocks] == [
        ['pip install -e ".[all]"', "pyasg demo"],
        ['pip install -e ".[all]"', "ruff check . && python -m pytest -n 2"],
    ]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- ci -->" in ci
