"""The tutorial runner (refimpl.course) and the kit tutorials use (refimpl.tutorial), on
small synthetic tutorials written to a temporary folder. The real tutorials are run by
tests/test_tutorials.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from refimpl import course, tutorial
from refimpl.cli import main

GOOD = '''\
# %% [markdown]
# # A good tutorial
#
# Prose with `code` and **bold**.

# %%
import matplotlib.pyplot as plt
from refimpl.tutorial import Tutorial

tut = Tutorial(title="A good tutorial", claim="Two plus two is four.")
FAST = tut.fast
print("fast is", FAST)

# %%
fig, ax = plt.subplots()
ax.plot([0, 1], [0, 1], label="line")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.legend()
tut.figure(fig, "line", "A straight line.")
four = tut.number("two plus two", 2 + 2)

# %% [markdown]
# ## What we checked

# %%
tut.check(four == 4, "two plus two is four")
'''


def write(folder, name, text):
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_parse_splits_cells_and_keeps_script_line_numbers():
    cells = course.parse(GOOD)
    assert [c.kind for c in cells] == ["markdown", "code", "code", "markdown", "code"]
    assert cells[0].source == "# A good tutorial\n\nProse with `code` and **bold**."
    assert cells[0].line == 2 and cells[1].line == 7  # the first line of each cell's text
    assert GOOD.splitlines()[cells[2].line - 1] == "fig, ax = plt.subplots()"


@pytest.mark.parametrize("text, message", [
    ("import os\n# %%\nx = 1\n", "before the first '# %%'"),
    ("# %% [markdown]\nnot a comment\n", "must be '#' or start with '# '"),
])
def test_parse_rejects_malformed_scripts(text, message):
    with pytest.raises(ValueError, match=message):
        course.parse(text)


def test_discover_and_resolve_by_stem_name_or_number(tmp_path):
    for name in ("02_beta", "01_alpha"):
        write(tmp_path, name, GOOD)
    write(tmp_path, "helper", "x = 1\n")  # not NN_name: not a tutorial
    found = course.discover(tmp_path)
    assert list(found) == ["01_alpha", "02_beta"]
    for selector in ("02_beta", "beta", "02"):
        assert list(course.resolve([selector], found)) == ["02_beta"]
    assert list(course.resolve([], found)) == ["01_alpha", "02_beta"]
    with pytest.raises(ValueError, match="no tutorial named 'gamma'; available: 01_alpha, 02_beta"):
        course.resolve(["gamma"], found)


def test_a_good_tutorial_writes_its_lesson_figures_and_index(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write(src, "01_good", GOOD)
    lines = []
    [result] = course.run(fast=True, out=out, directory=src, progress=lines.append)
    assert result.ok, result.message
    assert result.title == "A good tutorial" and result.claim == "Two plus two is four."
    assert [f.file for f in result.figures] == ["line.png"]
    assert [(n.label, n.value, n.text) for n in result.numbers] == [("two plus two", 4, "4")]
    assert [(c.statement, c.passed) for c in result.checks] == [("two plus two is four", True)]
    assert (out / "01_good" / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "01_good" / "01_good.py").read_text() == GOOD  # the script itself
    lesson = (out / "01_good" / "lesson.md").read_text()
    assert "fast is True" in lesson  # the cell's printed output, in its place
    assert lesson.index("fast is True") < lesson.index("![A straight line.](line.png)")
    page = (out / "01_good" / "lesson.html").read_text()
    assert '<img src="line.png"' in page and "<strong>bold</strong>" in page
    index_md, index_html = (out / "index.md").read_text(), (out / "index.html").read_text()
    for index in (index_md, index_html):
        assert "Two plus two is four." in index and "01_good/line.png" in index
        assert "all 1 checks hold" in index and "two plus two is four" in index
    assert "| two plus two | 4 |" in index_md
    assert lines[0].startswith("[1/1] 01_good running")
    assert "ok" in lines[1] and "1 figures, 1 numbers, 1/1 checks hold" in lines[1]


def test_a_rerun_removes_the_previous_runs_figures(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write(src, "01_good", GOOD)
    (out / "01_good").mkdir(parents=True)
    (out / "01_good" / "stale.png").write_bytes(b"old")
    course.run(out=out, directory=src, progress=lambda line: None)
    assert not (out / "01_good" / "stale.png").exists()


def test_a_failing_check_fails_the_tutorial_and_the_others_still_run(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write(src, "01_bad", GOOD.replace("four == 4", "four == 5"))
    write(src, "02_good", GOOD)
    lines = []
    bad, good = course.run(out=out, directory=src, progress=lines.append)
    assert bad.status == "failed" and bad.message == "two plus two is four"
    assert [(c.statement, c.passed) for c in bad.checks] == [("two plus two is four", False)]
    assert good.ok
    assert "FAILED" in lines[1] and lines[2].strip() == "two plus two is four"
    assert "**FAILS**: two plus two is four" in (out / "index.md").read_text()
    assert "This run did not complete" in (out / "01_bad" / "lesson.md").read_text()


def test_an_error_reports_the_scripts_own_line(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    text = GOOD.replace('print("fast is", FAST)', "1 / 0")
    write(src, "01_err", text)
    [result] = course.run(out=tmp_path / "out", directory=src, progress=lambda line: None)
    line = text.splitlines().index("1 / 0") + 1
    assert result.status == "error"
    assert f'01_err.py", line {line}' in result.message
    assert result.message.endswith("ZeroDivisionError: division by zero")


@pytest.mark.parametrize("edit, message", [
    (("tut.figure(fig, \"line\", \"A straight line.\")", "plt.close(fig)"), "no figure"),
    (("four = tut.number(\"two plus two\", 2 + 2)", "four = 4"), "no number"),
    (("tut.check(four == 4, \"two plus two is four\")", "assert four == 4"),
     "the last code cell records no check"),
])
def test_a_tutorial_must_record_a_figure_a_number_and_end_with_a_check(tmp_path, edit, message):
    src = tmp_path / "src"
    src.mkdir()
    write(src, "01_incomplete", GOOD.replace(*edit))
    [result] = course.run(out=tmp_path / "out", directory=src, progress=lambda line: None)
    assert result.status == "error" and message in result.message


def test_the_command_exits_1_when_a_tutorial_fails_and_2_on_an_unknown_name(
        tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"
    src.mkdir()
    write(src, "01_bad", GOOD.replace("four == 4", "four == 5"))
    write(src, "02_good", GOOD)
    monkeypatch.setattr(course, "_default_directory", lambda: src)
    assert main(["tutorials", "--fast", "--out", str(tmp_path / "a"), "good"]) == 0
    assert main(["tutorials", "--out", str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "1 of 2 tutorials hold" in out and "not holding: 01_bad" in out
    assert main(["tutorials", "--out", str(tmp_path / "c"), "nope"]) == 2
    assert "no tutorial named 'nope'" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["tutorials", "--out", str(tmp_path / "file")]) == 2
    assert "--out must be a folder" in capsys.readouterr().err
    assert main(["tutorials", "--list"]) == 0
    assert capsys.readouterr().out.split()[::2] == ["01_bad", "02_good"]


def test_a_standalone_run_reads_the_environment(tmp_path):
    """``python tutorials/NN_name.py`` works without the runner: REFIMPL_TUTORIAL_FAST and
    REFIMPL_TUTORIAL_OUT configure it; the figure lands in OUT/<slug of the title>."""
    script = write(tmp_path, "01_good", GOOD)
    env = dict(os.environ, REFIMPL_TUTORIAL_FAST="1", REFIMPL_TUTORIAL_OUT=str(tmp_path / "o"),
               MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, check=True)
    assert "fast is True" in run.stdout and "[check] holds: two plus two is four" in run.stdout
    assert (tmp_path / "o" / "a_good_tutorial" / "line.png").is_file()
    env["REFIMPL_TUTORIAL_FAST"] = "maybe"
    bad = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "REFIMPL_TUTORIAL_FAST must be" in bad.stderr


@pytest.fixture
def tut(tmp_path, monkeypatch):
    monkeypatch.setattr(tutorial, "_ACTIVE",
                        tutorial._Context(name="t", out=tmp_path / "t", fast=True))
    return tutorial.Tutorial(title="T", claim="C")


def test_the_kit_rejects_bad_input_with_the_parameters_name(tut):
    import matplotlib.pyplot as plt
    import numpy as np

    with pytest.raises(TypeError, match="title must be a non-empty string"):
        tutorial.Tutorial(title="", claim="C")
    with pytest.raises(ValueError, match="value of 'x' must be finite"):
        tut.number("x", float("nan"))
    with pytest.raises(TypeError, match="value must be a real number, bool or str"):
        tut.number("x", np.ones(2))
    with pytest.raises(TypeError, match="condition must be a bool, got ndarray"):
        tut.check(np.ones(2) > 0, "ambiguous")
    with pytest.raises(ValueError, match="name must be letters, digits"):
        tut.figure(plt.figure(), "a b", "caption")
    tut.figure(plt.figure(), "once", "first")
    with pytest.raises(ValueError, match="name 'once' was already used"):
        tut.figure(plt.figure(), "once", "second")
    plt.close("all")


def test_the_kit_formats_numbers_and_accepts_numpy_scalars(tut, capsys):
    import numpy as np

    assert tut.number("ratio", np.float64(0.123456789)) == np.float64(0.123456789)
    tut.number("steps", np.int64(1312), unit="steps")
    tut.number("flag", True)
    tut.check(np.float64(1.0) > 0, "a NumPy bool is a bool")
    assert capsys.readouterr().out.splitlines() == [
        "ratio: 0.1235", "steps: 1312 steps", "flag: True", "[check] holds: a NumPy bool is a bool"]


def test_markdown_subset_renders_exactly():
    text = textwrap.dedent("""\
        # Title with `x < y`

        A paragraph with **bold**, *italic*, a [link](a.html) and <b>raw</b> HTML
        continued here.

        - one
        - two with `a*b*c`
          continued

        1. first
        2. second

        | a | b |
        |---|---:|
        | 1 | `2` and a \\| bar |

        ```
        if x < 1: pass
        ```""")
    assert course.markdown_to_html(text).splitlines() == [
        "<h1>Title with <code>x &lt; y</code></h1>",
        "<p>A paragraph with <strong>bold</strong>, <em>italic</em>, a "
        '<a href="a.html">link</a> and &lt;b&gt;raw&lt;/b&gt; HTML continued here.</p>',
        "<ul><li>one</li><li>two with <code>a*b*c</code> continued</li></ul>",
        "<ol><li>first</li><li>second</li></ol>",
        "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td>"
        "<td><code>2</code> and a | bar</td></tr></tbody></table>",
        "<pre><code>if x &lt; 1: pass</code></pre>",
    ]


def test_a_figure_needs_axis_labels_and_a_legend(tut):
    """The kit refuses a figure that is not readable at a glance, naming the panel."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2)
    a.plot([0, 1], label="one")
    a.plot([1, 0], label="two")
    a.set_xlabel("step")
    b.set_title("empty panel: nothing to label")
    with pytest.raises(ValueError, match="panel 1 has no y label; panel 1 has 2 labelled "
                                         "artists but no legend"):
        tut.figure(fig, "bad", "caption")
    a.set_ylabel("loss")
    fig.legend()  # a figure legend counts for every panel
    tut.figure(fig, "good", "caption")
    assert (tut.out / "good.png").is_file() and not (tut.out / "bad.png").exists()


def test_a_shared_axis_is_labelled_by_its_labelled_panel(tut):
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True)
    top.plot([0, 1])
    bottom.plot([1, 0])
    top.set_ylabel("loss")
    bottom.set_ylabel("accuracy")
    bottom.set_xlabel("epoch")  # labels the top panel's shared x axis too
    tut.figure(fig, "shared", "caption")
    fig, (left, right) = plt.subplots(1, 2, sharex=True)
    left.plot([0, 1])
    right.plot([1, 0])
    for ax in (left, right):
        ax.set_ylabel("y")
    with pytest.raises(ValueError, match="panel 1 has no x label; panel 2 has no x label"):
        tut.figure(fig, "unshared", "caption")
    plt.close("all")
