"""Stand-ins for what cannot be had here: the Ubuntu ISO, its initrd, k3s/Flux release files."""

from isobuild.standin.artifacts import write_standins
from isobuild.standin.iso import StandinOptions, build_standin

__all__ = ["StandinOptions", "build_standin", "write_standins"]
