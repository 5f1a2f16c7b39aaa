"""Whether a command may write an output file where one is named: never over what is not one.

``--force`` means "replace the file an earlier run wrote". A directory, a device or a
FIFO at that path is something else the user keeps there: a rename would move a
directory aside and the build's cleanup would delete it with its contents, so it is
refused even with ``--force``.
"""

from __future__ import annotations

import stat
from pathlib import Path

from isobuild.errors import ConfigError, OutputExistsError


def check_replaceable(path: Path, *, force: bool) -> None:
    """Refuse ``path`` if it exists and ``force`` is not set, or if it is not a file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigError(
            f"{path}: is {kind}, where the output file goes; --force replaces files only",
            hint="move it away or choose another output path",
        )
    if not force:
        raise OutputExistsError(f"{path}: already exists", hint="pass --force to replace it")
