"""Exceptions raised by sedmap.

The library never calls ``sys.exit``: it raises these, and only the
command-line entry point turns them into an exit status.
"""


class SedmapError(Exception):
    """Base class of every sedmap error."""


class InputError(SedmapError, ValueError):
    """Bad input: a missing or corrupt file, wrong units, an unknown name.

    The message names the file (or setting), the problem and the fix.

    Parameters
    ----------
    problem : str
        What is wrong, in plain words.
    path : str or os.PathLike, optional
        The file (or config key) the problem is in.
    fix : str, optional
        What the user should do about it.
    """

    def __init__(self, problem, path=None, fix=None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.fix = fix
        parts = []
        if self.path:
            parts.append(f"{self.path}: ")
        parts.append(problem)
        if fix:
            parts.append(f" Fix: {fix}")
        super().__init__("".join(parts))
