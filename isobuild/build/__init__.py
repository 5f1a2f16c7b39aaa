"""The build pipeline: `build(config, tools, options)` as named steps over one `BuildContext`."""

from isobuild.build.context import (
    AddedFile,
    BaseIsoCheck,
    BuildContext,
    BuildOptions,
    BuildResult,
    Step,
    Tools,
)
from isobuild.build.pipeline import build, steps

__all__ = [
    "AddedFile",
    "BaseIsoCheck",
    "BuildContext",
    "BuildOptions",
    "BuildResult",
    "Step",
    "Tools",
    "build",
    "steps",
]
