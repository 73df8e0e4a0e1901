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
    start = time.monotonic()
    try:
        for _ in P.progress(range(10), desc="work", mininterval=0.0):
            time.sleep(0.1)
    finally:
        elapsed = time.monotonic() - start
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("work:") >= 5      # lines, not redraws (no tty)
    logged = (tmp_path / "job.log").read_text().splitlines()
    assert "100%" in logged[-1] and sum("100%" in x for x in logged) == 1
    # one line per 0.25 s of the loop (plus the first and the last), not every redraw
    assert 2 <= len(logged) <= elapsed / 0.25 + 2, (len(logged), elapsed)
