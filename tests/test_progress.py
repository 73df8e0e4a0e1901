"""Progress bars: plain lines at a slow rate without a terminal, and the bar's state
in the job log where logging goes to a file."""

import logging
import time

import sedmap.progress as P


def test_bar_writes_lines_and_logs_at_its_interval(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(P, "LOG_INTERVAL", 0.25)
    root = logging.getLogger()
    handler = logging.FileHandler(tmp_path / "job.log")
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        for _ in P.progress(range(10), desc="work", mininterval=0.0):
            time.sleep(0.1)
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("work:") >= 5      # lines, not redraws (no tty)
    logged = (tmp_path / "job.log").read_text().splitlines()
    assert "100%" in logged[-1] and sum("100%" in x for x in logged) == 1
    assert 2 <= len(logged) <= 6   # every ~0.25 s of a 1 s loop, not every redraw
