"""Figures (PNG): written atomically, with no software tag, so that a run's figures
are the same bytes every time."""

from .atomic import atomic_path

#: resolution of every sedmap figure, dots per inch
DPI = 90


def save_figure(fig, path):
    """Write the matplotlib figure ``fig`` to the PNG ``path`` (temp file, then rename)
    and return ``path``. Figures made with pyplot are closed by the caller."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    return path
