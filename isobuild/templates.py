"""The jinja2 templates of a build (autoinstall/, overlays/): one strict environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from isobuild.errors import ConfigError


class Templates:
    """The templates under one directory; an undefined name is an error, not an empty string.

    Nothing is HTML, so nothing is escaped; a template's trailing newline is kept.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )

    def render(self, name: str, context: Mapping[str, Any], *, hint: str) -> str:
        """Template ``name`` rendered; errors name the file and line, with ``hint``."""
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateError as exc:
            where = getattr(exc, "name", None) or name
            line = getattr(exc, "lineno", None)
            raise ConfigError(
                f"{self.directory / where}{f':{line}' if line else ''}: template error: {exc}",
                hint=hint,
            ) from exc
