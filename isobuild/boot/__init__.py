"""Booting ISOs under QEMU: argument lists, guests and the boot matrix."""

from isobuild.boot.matrix import Cell, CellResult, run_matrix
from isobuild.boot.qemu import Accel, Guest, GuestSpec, detect_accel

__all__ = ["Accel", "Cell", "CellResult", "Guest", "GuestSpec", "detect_accel", "run_matrix"]
