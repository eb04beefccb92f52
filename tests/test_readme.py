"""Every Python example in the README runs."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_readme_example_runs(number, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # examples may write figures
    exec(compile(EXAMPLES[number], f"README example {number + 1}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out  # every example prints what it shows
