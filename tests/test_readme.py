"""README stays true: its example runs, and CI runs its test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _bash_commands():
    block = re.search(r"## Two commands\n.*?```bash\n(.*?)```", README, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_has_exactly_two_setup_commands():
    commands = _bash_commands()
    assert len(commands) == 2
    assert commands[0].endswith("refimpl tutorials")
    assert commands[1].endswith("pytest")


def test_ci_runs_the_readme_commands_verbatim_in_order():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    marker = next(i for i, line in enumerate(ci) if "README-COMMANDS" in line)
    # the README's commands verbatim and in order, each then "|| exit 1" so a failed
    # install stops CI
    run = [line for line in ci[marker:] if line and not line.startswith(("#", "echo"))]
    assert run[:2] == [command + " || exit 1" for command in _bash_commands()]


def test_readme_python_examples_run():
    """The python blocks of "A first look" run in order in one namespace (each block
    ends with its own assert)."""
    section = re.search(r"## A first look\n(.*?)\n## ", README, re.S).group(1)
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 2
    namespace = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), namespace)


def test_readme_speed_table_is_the_stored_bench_run():
    """The Speed section's rows are `refimpl bench --table benchmarks/results.json
    --targets-only`, so the README cannot drift from the stored measurements."""
    from refimpl import bench

    records, _ = bench.read_json(ROOT / "benchmarks" / "results.json")
    expected = [line for line in bench.format_table(records, targets_only=True).splitlines()
                if line.startswith("|")]
    section = re.search(r"## Speed\n(.*?)\n## ", README, re.S).group(1)
    assert [line for line in section.splitlines() if line.startswith("|")] == expected
