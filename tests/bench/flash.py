"""`isobuild flash` write and read-back throughput against dd on the same loop device.

The 2.7 GB bench ISO goes to a loop device with direct I/O to its backing file (a stick's
writes reach the medium, not the page cache): `dd bs=4M oflag=direct` against the flash
writer (head zeroed first and written last, three fsyncs, all included), and `dd
iflag=direct` against the read-back (which also compares). Interleaved, best of 5 each:
on these VMs one direct read of the same 2.6 GiB takes 1.2 to 2.1 s whatever the block
size, so three rounds let one lucky dd run decide (a read-back ratio of 80 % was seen with
both reads at the same speed); the medians are printed beside the best.
Targets (issue 14): write >= 90 % of dd, read-back >= 90 % of dd. Needs root.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

from isobuild.flash import writer
from tests.bench.iso import base_iso

MB4 = 4 << 20
SPARE = 64 << 20
TARGET = 0.90
REPEATS = 5


def _dd(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run(["dd", *args, "status=none"], check=True)
    return time.perf_counter() - started


def run(cache: Path) -> int:
    if os.geteuid() != 0:
        print("skipped: attaching a loop device needs root")
        return 0
    iso = base_iso(cache)
    size = iso.stat().st_size
    blocks = -(-size // MB4)
    backing = iso.parent / "flash-stick.img"
    with backing.open("wb") as handle:
        handle.truncate(size + SPARE)
    device = Path(
        subprocess.run(["losetup", "--find", "--show", "--direct-io=on", str(backing)],
                       capture_output=True, text=True, check=True).stdout.strip()
    )  # fmt: skip
    load_before = os.getloadavg()
    try:
        sysfs = Path("/sys/block") / device.name
        align = int((sysfs / "queue/logical_block_size").read_text())
        device_size = int((sysfs / "size").read_text()) * 512
        direct_io = (sysfs / "loop/dio").read_text().strip() == "1"
        subprocess.run(["cat", str(iso)], stdout=subprocess.DEVNULL, check=True)  # warm
        dd_write, dd_read, flash_write, flash_read = [], [], [], []
        for _ in range(REPEATS):
            dd_write.append(_dd(f"if={iso}", f"of={device}", "bs=4M", "oflag=direct",
                                f"count={blocks}"))  # fmt: skip
            with writer.open_target(device, block=True, align=align, size=device_size) as target:
                flash_write.append(writer.write_image(iso, size, target, lambda n: None).seconds)
            dd_read.append(_dd(f"if={device}", "of=/dev/null", "bs=4M", "iflag=direct",
                               f"count={blocks}"))  # fmt: skip
            found = writer.read_back(device, iso, size, align, lambda n: None)
            if not found.direct or found.difference is not None or found.ends_at is not None:
                raise RuntimeError(f"{device}: the read-back did not verify: {found}")
            flash_read.append(found.timing.seconds)
    finally:
        subprocess.run(["losetup", "--detach", str(device)], check=False)
        backing.unlink()
    load_after = os.getloadavg()
    mib = 1 << 20

    def rate(seconds: list[float]) -> float:
        return size / min(seconds) / mib

    def median_rate(seconds: list[float]) -> float:
        return size / statistics.median(seconds) / mib

    rows = (
        ("write", rate(dd_write), rate(flash_write), "dd bs=4M oflag=direct"),
        ("read back", rate(dd_read), rate(flash_read), "dd bs=4M iflag=direct (no compare)"),
    )
    print(f"{size / (1 << 30):.2f} GiB to {device} (loop, direct I/O to its backing file: "
          f"{direct_io}); best of {REPEATS}, MiB/s")  # fmt: skip
    for name, dd, ours, what in rows:
        verdict = "ok" if ours / dd >= TARGET else f"below the {TARGET:.0%} target"
        print(f"  {name:10} dd {dd:7.1f}  flash {ours:7.1f}  = {ours / dd:5.1%} of {what}  "
              f"({verdict})")  # fmt: skip
    print(f"  medians    write dd {median_rate(dd_write):7.1f}  flash "
          f"{median_rate(flash_write):7.1f};  read back dd {median_rate(dd_read):7.1f}  flash "
          f"{median_rate(flash_read):7.1f}")  # fmt: skip
    print(
        f"  all runs (s): dd write {dd_write}, flash write {flash_write}, dd read {dd_read}, "
        f"flash read {flash_read}"
    )
    print(f"machine load {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"(1-minute average on {os.cpu_count()} cores)")  # fmt: skip
    return 0
