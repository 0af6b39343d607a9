"""The `pyasg` command: demo, examples, run, info; one-line errors with exit codes 2 and 1."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg import cli, examples
from pyasg.examples import charlm

ROOT = Path(__file__).resolve().parent.parent
QUIET = ["-q", "--sample-length", "0"]


def pyasg_command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyasg", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def metrics_of(stdout: str) -> dict[str, float]:
    """The numbers on the demo's last "charlm: name value  name value" line."""
    line = [s for s in stdout.splitlines() if s.startswith("charlm: first_loss")][-1]
    pairs = re.findall(r"(\w+) (\S+)", line.removeprefix("charlm:"))
    return {k: float(v) for k, v in pairs}


def error_lines(stderr: str) -> list[str]:
    # wgpu's native loader may print "error: XDG_RUNTIME_DIR ..." lines; they are not ours.
    return [s for s in stderr.splitlines() if s.strip() and "XDG_RUNTIME_DIR" not in s]


# --------------------------------------------------------------------------- the demo


def test_demo_trains_reports_a_falling_loss_and_prints_a_sample():
    done = pyasg_command("demo", "--steps", "20", "--sample-length", "40", "--prompt", "def ")
    assert done.returncode == 0, done.stderr
    m = metrics_of(done.stdout)
    # An untrained model is close to uniform over the 96 characters: loss near ln 96.
    assert abs(m["first_loss"] - math.log(96)) < 0.5
    assert m["final_loss"] < m["first_loss"] - 0.5
    match = re.search(r"--- sample \(temperature 0.8\) ---\n(.*)\n---\n", done.stdout, re.S)
    assert match, done.stdout
    sample = match.group(1)
    assert sample.startswith("def ") and len(sample) == len("def ") + 40
    assert set(sample) <= set(charlm.VOCAB)


@WGPU
def test_demo_on_wgpu_matches_numpy(capsys):
    require_wgpu()
    assert cli.main(["demo", "--backend", "wgpu", "--steps", "5", "--sample-length", "3",
                     "-q"]) == 0
    on_gpu = metrics_of(capsys.readouterr().out)
    assert cli.main(["demo", "--steps", "5", *QUIET]) == 0
    on_cpu = metrics_of(capsys.readouterr().out)
    assert on_gpu["first_loss"] == pytest.approx(on_cpu["first_loss"], abs=1e-3)
    assert on_gpu["final_loss"] == pytest.approx(on_cpu["final_loss"], abs=1e-2)


def test_gpu_is_an_alias_of_backend_wgpu():
    assert charlm.parser().parse_args(["--gpu"]).backend == "wgpu"


def _checkpoint(directory: Path, step: int) -> pyasg.io.Checkpoint:
    return pyasg.io.load_checkpoint(directory / f"ckpt-{step:012d}.safetensors")


def test_resume_continues_from_the_saved_step_params_and_optimizer_state(tmp_path, capsys):
    a, b, straight = tmp_path / "a", tmp_path / "b", tmp_path / "straight"
    assert cli.main(["demo", "--steps", "3", "--save", str(a), *QUIET]) == 0
    saved = _checkpoint(a, 3)

    resumed = charlm.Trainer.resume(a)
    assert resumed.step == 3
    for path, want in pyasg.trace.tree.flatten_with_paths(saved.params)[0]:
        got = dict(pyasg.trace.tree.flatten_with_paths(resumed.params)[0])[path]
        np.testing.assert_array_equal(got, want, err_msg=path)
    assert int(resumed.opt_state["step"]) == int(saved.opt_state["step"]) == 3

    steps: list[int] = []
    unsubscribe = pyasg.subscribe(lambda e: steps.append(e.step), pyasg.StepDone)
    try:
        assert cli.main(["demo", "--resume", str(a), "--steps", "2", "--save", str(b),
                         *QUIET]) == 0
    finally:
        unsubscribe()
    assert steps == [4, 5]
    assert "resuming at step 3" in capsys.readouterr().out

    # 3 steps + save + resume + 2 steps is 5 steps straight: same batches, same state.
    assert cli.main(["demo", "--steps", "5", "--save", str(straight), *QUIET]) == 0
    want, got = _checkpoint(straight, 5), _checkpoint(b, 5)
    for (path, w), (_, g) in zip(pyasg.trace.tree.flatten_with_paths(want.params)[0],
                                 pyasg.trace.tree.flatten_with_paths(got.params)[0]):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7, err_msg=path)


def test_resume_from_a_directory_without_checkpoints_is_one_line_and_exit_1(tmp_path, capsys):
    assert cli.main(["demo", "--resume", str(tmp_path), *QUIET]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("pyasg: error:") and str(tmp_path) in err[0]


def test_unknown_lang_warns_naming_the_choices_and_falls_back(capsys):
    assert cli.main(["demo", "--lang", "xx", "--steps", "1", *QUIET]) == 0
    err = capsys.readouterr().err
    assert "'xx'" in err and "en" in err and "ru" in err


# --------------------------------------------------------------------------- the corpus


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.sampled_from(charlm.VOCAB)))
def test_encode_then_decode_is_the_identity_on_the_vocabulary(text):
    assert charlm.decode(charlm.encode(text)) == text


def test_characters_outside_the_vocabulary_become_question_marks():
    assert charlm.decode(charlm.encode("é\tπ")) == "?    ?"


def test_a_missing_corpus_names_the_directory_and_the_files(tmp_path):
    with pytest.raises(charlm.CorpusError) as info:
        charlm.load_corpus(tmp_path)
    assert str(tmp_path) in str(info.value) and "textwrap.py" in str(info.value)


def test_batches_are_next_character_targets_fixed_by_seed_and_step():
    data = np.arange(1000, dtype=np.int32)
    x, y = charlm.batch(data, seed=1, step=7, batch_size=4, context=8)
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x, charlm.batch(data, 1, 7, 4, 8)[0])
    assert not np.array_equal(x, charlm.batch(data, 1, 8, 4, 8)[0])


# --------------------------------------------------------------------------- examples, run


def test_examples_lists_every_example_module(capsys):
    assert cli.main(["examples"]) == 0
    out = capsys.readouterr().out
    folder = ROOT / "pyasg" / "examples"
    names = sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))
    assert "charlm" in names
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == names


def test_an_unknown_example_is_a_pyasg_error_naming_the_choices():
    with pytest.raises(examples.UnknownExampleError, match="charlm"):
        examples.run("nope", [])


def test_run_of_an_unknown_name_is_one_line_and_exit_2():
    done = pyasg_command("run", "nope")
    assert done.returncode == 2
    err = error_lines(done.stderr)
    assert len(err) == 1 and "nope" in err[0] and "charlm" in err[0]


def test_run_charlm_is_the_demo(capsys):
    assert cli.main(["run", "charlm", "--steps", "2", *QUIET]) == 0
    by_run = metrics_of(capsys.readouterr().out)
    assert cli.main(["demo", "--steps", "2", *QUIET]) == 0
    by_demo = metrics_of(capsys.readouterr().out)
    assert by_run["final_loss"] == by_demo["final_loss"]


def test_an_example_runs_as_a_script():
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "charlm.py"), "--steps", "2",
                           *QUIET], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "final_loss" in done.stdout


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("argv", [
    ["--nope"], ["nope"], ["info", "extra"], ["demo", "--steps", "x"], ["demo", "--steps", "0"],
    ["demo", "--bogus"], ["demo", "--backend", "cuda"], ["run", "charlm", "--nope"], ["run"],
    ["view"],
])
def test_bad_arguments_are_one_line_and_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    err = error_lines(captured.err)
    assert len(err) == 1 and err[0].startswith("pyasg: error:"), captured.err
    assert "usage" not in captured.err.lower()


def test_bad_flags_in_a_real_process_print_no_traceback():
    done = pyasg_command("demo", "--steps", "many")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert error_lines(done.stderr) == [
        "pyasg: error: argument --steps: expected a whole number, got 'many'"]


# --------------------------------------------------------------------------- info


def test_info_has_an_adapter_line(capsys):
    assert cli.main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    adapter = [s for s in lines if s.startswith("adapter ")]
    assert len(adapter) == 1 and adapter[0].split(maxsplit=1)[1]
    assert any(s.startswith("backends ") and "numpy" in s for s in lines)


def test_info_says_why_there_is_no_adapter_when_wgpu_is_missing(monkeypatch, capsys):
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "wgpu" else real(name, *a))
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "adapter    none: wgpu is not installed" in out
    assert "backends   numpy (" in out


def test_info_names_a_cpu_adapter_as_such(monkeypatch):
    from pyasg.kernels.wgpu import device

    class FakeAdapter:
        info = {"device": "llvmpipe", "adapter_type": "CPU", "backend_type": "Vulkan"}

    monkeypatch.setattr(device, "get_adapter", lambda: FakeAdapter())
    if cli.importlib.util.find_spec("wgpu") is None:
        pytest.skip("wgpu is not installed")
    usable, line = cli._adapter()
    assert usable and "llvmpipe" in line and "CPU adapter" in line and "lavapipe" in line


# --------------------------------------------------------------------------- a first run


def test_run_takes_quiet_like_demo(capsys):
    assert cli.main(["run", "xor", "--steps", "3"]) == 0
    assert "3/3" in capsys.readouterr().err  # the progress bar, at its end
    assert cli.main(["run", "xor", "--steps", "3", "-q"]) == 0
    captured = capsys.readouterr()
    assert "3/3" not in captured.err and "xor: first_loss" in captured.out
    assert cli.main(["run", "spiral", "--steps", "2", "--quiet"]) == 0
    assert "2/2" not in capsys.readouterr().err


def test_one_step_prints_no_nan_rate(capsys):
    assert cli.main(["demo", "--steps", "1", *QUIET]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("charlm: first")]
    assert line and "nan" not in line[0].lower() and "final_loss" in line[0]
    assert cli.main(["demo", "--steps", "3", *QUIET]) == 0
    rate = metrics_of(capsys.readouterr().out)["steps_per_s"]
    assert math.isfinite(rate) and rate > 0  # two timed steps: a rate is shown


def _cased(word: str, flips: list[bool]) -> str:
    return "".join(c.upper() if f else c for c, f in zip(word, flips + [False] * len(word)))


@settings(max_examples=25, deadline=None)
@given(word=st.sampled_from(["en", "ru", "english", "russian"]),
       flips=st.lists(st.booleans(), max_size=7))
def test_lang_takes_codes_and_names_in_any_case(tmp_path_factory, word, flips):
    code = {"en": "en", "english": "en", "ru": "ru", "russian": "ru"}[word]
    path = tmp_path_factory.mktemp("lang") / "g.json"
    pyasg.save_graph(path, pyasg.make_graph(lambda x: x * 2.0)(np.ones(2, np.float32)))
    launched = []

    def fake_launch(lang="en", **kwargs):
        launched.append(lang)
        assert kwargs == {"static": True}  # a saved graph: no training status, no chart
        return types.SimpleNamespace(process=types.SimpleNamespace(join=lambda: None))

    real, pyasg.viewer.launch = pyasg.viewer.launch, fake_launch
    try:
        assert cli.main(["view", str(path), "--lang", _cased(word, flips)]) == 0
    finally:
        pyasg.viewer.launch = real
    assert launched == [code]


@pytest.mark.parametrize("lang", ["English", "RUSSIAN", "Ru"])
def test_the_demo_takes_a_language_name_without_a_warning(lang, capsys):
    assert cli.main(["demo", "--lang", lang, "--steps", "1", *QUIET]) == 0
    assert "unknown language" not in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_flags_print_the_version(flag, capsys):
    written = (ROOT / "pyasg" / "_version.py").read_text(encoding="utf-8")
    version = re.search(r'__version__ = "([^"]+)"', written).group(1)
    assert cli.main([flag]) == 0
    assert capsys.readouterr().out == f"pyasg {version}\n"


def test_version_in_a_real_process():
    done = pyasg_command("-V")
    assert done.returncode == 0 and done.stdout.strip() == f"pyasg {pyasg.__version__}"
