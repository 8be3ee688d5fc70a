"""The tutorial runner (refimpl.course) and the kit tutorials use (refimpl.tutorial), on
small synthetic tutorials written to a temporary folder. The real tutorials are run by
tests/test_tutorials.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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

tut = Tutorial(title="A good tutorial", claim="Two plus two is four.",
               idea="Adding $2$ to $2$ gives $4$.", formula=r"2 + 2 = 4")
FAST = tut.fast
print("fast is", FAST)

# %%
fig, ax = plt.subplots()
ax.plot([0, 1], [0, 1], label="line")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.legend()
tut.figure(fig, "line", "A straight line.", key=True)
four = 2 + 2
tut.number("two plus two", four)

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
    # the output in its place, before the figure the next cell draws (the key figure is
    # also shown first, under the idea)
    assert lesson.index("fast is True") < lesson.rindex("![A straight line.](line.png)")
    assert lesson.index("## The idea") < lesson.index("![A straight line.](line.png)")
    page = (out / "01_good" / "lesson.html").read_text()
    assert '<img src="line.png"' in page and "<strong>bold</strong>" in page
    index_md, index_html = (out / "index.md").read_text(), (out / "index.html").read_text()
    for index in (index_md, index_html):
        assert "Two plus two is four." in index and "01_good/line.png" in index
        assert "all 1 checks hold" in index and "two plus two is four" in index
    assert "| two plus two | 4 |" in index_md
    assert lines[0].startswith("[1/1] 01_good running")
    assert "ok" in lines[1] and "1 figures, 1 numbers, 1/1 checks hold" in lines[1]


def test_a_rerun_removes_the_previous_runs_figures_but_nothing_it_did_not_write(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write(src, "01_good", GOOD.replace('"line", "A straight', '"old_name", "A straight'))
    course.run(out=out, directory=src, progress=lambda line: None)
    assert (out / "01_good" / "old_name.png").is_file()
    (out / "01_good" / "my_notes.txt").write_text("a student's notes")
    write(src, "01_good", GOOD)
    course.run(out=out, directory=src, progress=lambda line: None)
    assert not (out / "01_good" / "old_name.png").exists()  # the previous run's figure
    assert (out / "01_good" / "line.png").is_file()
    assert (out / "01_good" / "my_notes.txt").read_text() == "a student's notes"


def test_ctrl_c_half_way_leaves_the_previous_output_whole(tmp_path):
    """The reproduction: Ctrl-C during a re-run left the tutorial's previous good output
    half-deleted and an index linking to missing files. Now a re-run replaces each file
    atomically and removes the previous run's files only after its pages are written:
    interrupted right after a new figure, every file of the previous run is still
    there (the pages, the index and the manifest unchanged, the figures whole) and a
    student's file is untouched."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write(src, "01_good", GOOD.replace('"line", "A straight', '"old_name", "A straight'))
    course.run(out=out, directory=src, progress=lambda line: None)
    lesson = out / "01_good"
    (lesson / "my_notes.txt").write_text("a student's notes")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    interrupted = GOOD.replace('tut.number("two plus two", four)',
                               'raise KeyboardInterrupt  # Ctrl-C after the new figure')
    write(src, "01_good", interrupted)
    with pytest.raises(KeyboardInterrupt):
        course.run(out=out, directory=src, progress=lambda line: None)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert [p for p in after if p.name.endswith(".tmp")] == []  # no temporary left over
    for path in ("index.html", "index.md", "01_good/lesson.html", "01_good/lesson.md",
                 "01_good/.refimpl-files", "01_good/old_name.png", "01_good/my_notes.txt"):
        assert after[Path(path)] == before[Path(path)], path
    new_png = after[Path("01_good/line.png")]  # written whole before the interrupt
    assert new_png.startswith(b"\x89PNG") and new_png.rstrip().endswith(b"IEND\xaeB`\x82")


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
    (("tut.figure(fig, \"line\", \"A straight line.\", key=True)", "plt.close(fig)"),
     "no figure"),
    (("tut.number(\"two plus two\", four)", "pass"), "no number"),
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
    REFIMPL_TUTORIAL_OUT configure it; the figure lands in OUT/<the script's name>."""
    script = write(tmp_path, "01_good", GOOD)
    env = dict(os.environ, REFIMPL_TUTORIAL_FAST="1", REFIMPL_TUTORIAL_OUT=str(tmp_path / "o"),
               MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, check=True)
    assert "fast is True" in run.stdout and "[check] holds: two plus two is four" in run.stdout
    assert (tmp_path / "o" / "01_good" / "line.png").is_file()  # named after the script
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

    assert tut.number("ratio", np.float64(0.123456789)) is None  # no repr in a notebook
    tut.number("steps", np.int64(1312), unit="steps")
    tut.number("flag", True)
    tut.check(np.float64(1.0) > 0, "a NumPy bool is a bool")
    assert capsys.readouterr().out.splitlines() == [
        "ratio: 0.1235", "steps: 1312 steps", "flag: True", "[check] holds: a NumPy bool is a bool"]


def test_markdown_renders_commonmark_math_code_and_rewritten_links():
    from refimpl import render

    text = textwrap.dedent("""\
        # Title with `x < y` and $\\eta$

        A paragraph with **bold**, *italic*, a [proof](../proofs/sgd.md#claim-x), a
        [gone link](../tests/a.py) and $\\frac{1}{2}\\|w\\|^2$.

        - one
          - nested

        $$
        \\begin{aligned} a &= b \\\\ c &= d \\end{aligned}
        $$

        | a | b |
        |---|---:|
        | $1$ | `2` |

        ```python
        if x < 1: pass
        ```""")
    errors = len(render.MATH_ERRORS)
    links = []

    def link(href):
        links.append(href)
        return href.replace(".md", ".html") if "proofs" in href else None

    out = render.markdown_to_html(text, link)
    assert len(render.MATH_ERRORS) == errors
    assert out.headings == [(1, "title-with-x-y-and-eta", "Title with `x < y` and $\\eta$")]
    assert '<h1 id="title-with-x-y-and-eta">' in out.html
    assert "<strong>bold</strong>" in out.html and "<em>italic</em>" in out.html
    assert '<a href="../proofs/sgd.html#claim-x">proof</a>' in out.html
    assert '<span class="ref">gone link</span>' in out.html  # text kept, link dropped
    assert links == ["../proofs/sgd.md#claim-x", "../tests/a.py"]
    assert "<ul>" in out.html and out.html.count("<li>") == 2  # a nested list
    assert out.html.count("<math") == 4 and "$" not in out.html
    assert "<mfrac>" in out.html and "<mtable>" in out.html and "<mi>&</mi>" not in out.html
    assert '<div class="highlight"><pre>' in out.html and "<span" in out.html
    assert '<div class="table"><table>' in out.html


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


def test_a_standalone_run_writes_one_folder_per_tutorial_from_any_folder(tmp_path):
    """Run by the runner, by ``python NN_name.py`` from anywhere, or from inside the course
    folder it came from, a tutorial writes to one folder named after its script: never to
    a folder named after its title, never to refimpl-tutorials/refimpl-tutorials/."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    script = write(src, "01_good", GOOD)
    course.run(out=out, directory=src, progress=lambda line: None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFIMPL_TUTORIAL")}
    env["MPLBACKEND"] = "Agg"
    lesson = out / "01_good"
    (lesson / "line.png").unlink()
    for cwd, argv in ((out, ["01_good/01_good.py"]), (lesson, ["01_good.py"])):
        subprocess.run([sys.executable, *argv], cwd=cwd, env=env, check=True,
                       capture_output=True, text=True)
        assert (lesson / "line.png").is_file()  # back in the lesson's own folder
        (lesson / "line.png").unlink()
    assert not (out / "refimpl-tutorials").exists() and not (lesson / "refimpl-tutorials").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, str(script)], cwd=elsewhere, env=env, check=True,
                   capture_output=True, text=True)
    assert sorted(p.name for p in (elsewhere / "refimpl-tutorials").iterdir()) == ["01_good"]


def test_solutions_are_written_only_when_asked(tmp_path, capsys):
    from refimpl import exercises

    out = tmp_path / "course"
    assert main(["tutorials", "--solutions", "--out", str(out), "01"]) == 0
    written = sorted(p.name for p in (out / "solutions").iterdir())
    assert written == ["t01_sgd_momentum.py"]
    module = exercises.solutions_for("01_sgd_momentum")
    assert (out / "solutions" / written[0]).read_text() == Path(module.__file__).read_text()
    assert "try the exercises first" in capsys.readouterr().out


def test_an_unusable_out_is_a_usage_error_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["tutorials", "--fast", "--out", str(blocker / "sub"), "01"]) == 2
    assert "cannot be written" in capsys.readouterr().err
    assert main(["tutorials", "--fast", "--out", "", "01"]) == 2
    assert "empty string" in capsys.readouterr().err


def test_under_ipython_a_figure_is_shown_inline_and_still_saved(tut, monkeypatch):
    """In Jupyter (IPython loaded, a shell running) Tutorial.figure displays the figure
    before closing it, so a notebook run shows it inline; the PNG is saved as always."""
    import types

    import matplotlib.pyplot as plt

    figures = []
    for _ in range(2):  # made before the fake IPython: pyplot itself talks to a real one
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        figures.append(fig)
    shown = []
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: object()
    display = types.ModuleType("IPython.display")
    display.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    assert tut.figure(figures[0], "shown", "A line.") is None
    assert shown == [figures[0]] and (tut.out / "shown.png").is_file()
    fake.get_ipython = lambda: None  # IPython imported but no shell: nothing shown
    tut.figure(figures[1], "not_shown", "A line.")
    assert shown == [figures[0]] and (tut.out / "not_shown.png").is_file()


def test_text_too_small_to_project_is_rejected(tut):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(14, 4))
    ax.plot([0, 1], [0, 1], label="a")
    ax.plot([0, 1], [1, 0], label="b")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=8)
    with pytest.raises(ValueError, match="text under 12.5 px"):
        tut.figure(fig, "tiny", "Too small.")
    plt.close("all")
