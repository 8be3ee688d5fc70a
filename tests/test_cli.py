"""The ``refimpl`` command (refimpl.cli)."""

from __future__ import annotations

import re

import pytest

from refimpl.cli import main


def test_tutorials_fast_prints_the_sgd_witness(capsys):
    """``refimpl tutorials --fast`` exits 0 and prints SPEC 1's witness (g = 1,
    mu = 0.9, w0 = 0, lr 0.1 then 0.01): PyTorch and optax w2 = -0.1 - 0.01*1.9 = -0.119,
    Keras w2 = -0.1 + (0.9*(-0.1) - 0.01) = -0.200 (the old lr stays in the velocity)."""
    assert main(["tutorials", "--fast"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s*pytorch\s+w2 = -0\.119$", out, re.M)
    assert re.search(r"^\s*optax\s+w2 = -0\.119$", out, re.M)
    assert re.search(r"^\s*keras\s+w2 = -0\.200$", out, re.M)
    # the EMA Scaling Rule line: kappa = 4, lr 0.05 * 4, decay 0.99 ** 4 = 0.96059601
    assert "lr 0.05 -> 0.2, decay 0.99 -> 0.960596 (= 0.99 ** 4)" in out
    assert "200 steps" in out  # --fast shrinks the demo loop


@pytest.mark.parametrize("argv", [["nonsense"], [], ["tutorials", "--no-such-flag"]])
def test_bad_command_line_exits_with_code_2(argv, capsys):
    """argparse's usage error: SystemExit(2), message on stderr, nothing run."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "usage: refimpl" in captured.err and captured.out == ""
