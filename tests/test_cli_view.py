"""`pyasg view GRAPH.json --lang …` loads the graph and opens the viewer with that language."""

import types

import numpy as np
import pytest

import pyasg
from pyasg import cli


def test_view_opens_the_viewer_with_the_graph_and_the_language(tmp_path, monkeypatch):
    graph = pyasg.make_graph(lambda x: pyasg.tanh(x) * 2.0)(np.ones(3, np.float32))
    path = tmp_path / "model.json"
    pyasg.save_graph(path, graph)
    launched, seen = [], []

    def fake_launch(lang="en", **kwargs):
        launched.append(lang)
        assert kwargs == {"static": True}  # a saved graph: no training status, no chart
        return types.SimpleNamespace(process=types.SimpleNamespace(join=lambda: None))

    monkeypatch.setattr(pyasg.viewer, "launch", fake_launch)
    unsubscribe = pyasg.subscribe(seen.append, pyasg.GraphReady)
    try:
        assert cli.main(["view", str(path), "--lang", "ru"]) == 0
    finally:
        unsubscribe()
    assert launched == ["ru"]
    assert len(seen) == 1 and seen[0].graph == graph and seen[0].name == "model"


def test_view_of_a_bad_file_is_one_line_and_exit_code_2(tmp_path, capsys):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    assert cli.main(["view", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.json" in err[0]


@pytest.mark.parametrize("argv", [["view"], ["view", "a.json", "--lang"]])
def test_view_with_bad_arguments_exits_2(argv):
    assert cli.main(argv) == 2
