"""Progress bars (tqdm) that suit a terminal and a job log alike.

On a terminal a bar redraws in place at most ten times a second. Without one (a
shell rule's output piped to its log, a SLURM output file) it writes one plain
line every 10 s. Where the job logs to a file (the ``log:`` of a script rule,
:func:`sedmap.stages.snakemake_logging`), the bar's state also goes there as a
log line every 10 s and at the end, so a log shows how far a job got.
"""

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("sedmap.progress")

#: seconds between a bar's lines in a log (and on a stream that is not a terminal)
LOG_INTERVAL = 10.0


def _logs_to_file():
    return any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers)


class _BarStream:
    """Where tqdm writes: the terminal as is, or plain lines on a stream that is not
    one; and a log line every :data:`LOG_INTERVAL` seconds where logging goes to a
    file."""

    def __init__(self, tty, to_log):
        self.tty, self.to_log, self.last, self.last_line = tty, to_log, -float("inf"), ""

    def write(self, text):
        if self.tty:
            sys.stderr.write(text)
        line = text.replace("\r", "").strip()
        # tqdm redraws its last state on close, with a rate that may have moved
        # (9.94 it/s, then 9.95): the state is the part before the timing bracket
        state = line.split("[")[0]
        if not line or state == self.last_line:
            return
        self.last_line = state
        if not self.tty:
            sys.stderr.write(line + "\n")
        now = time.monotonic()
        if self.to_log and (now - self.last >= LOG_INTERVAL or "100%" in line):
            log.info("%s", line)
            self.last = now

    def flush(self):
        sys.stderr.flush()


def bar_kwargs(**kw):
    """tqdm keyword arguments for the current stderr (a terminal or not) and logging,
    plus ``kw``."""
    tty = sys.stderr.isatty()
    out = {"mininterval": 0.1 if tty else LOG_INTERVAL, "ascii": not tty,
           "file": _BarStream(tty, _logs_to_file())}
    out.update(kw)
    return out


def progress(iterable=None, **kw):
    """``tqdm(iterable, **kw)`` with :func:`bar_kwargs`."""
    return tqdm(iterable, **bar_kwargs(**kw))
