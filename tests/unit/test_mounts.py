"""Reading /proc/self/mountinfo: recorded tables, escaped paths, the order to unmount in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.mounts import Mount, clear_command, mounts_under, parse_mountinfo

# Recorded on the development machine: its own mounts (some stacked twice on one path),
# then a cached rootfs with /proc, a tmpfs holding another tmpfs, a tmpfs at a path with a
# space, and last a bind mount over the directory that holds that one (it hides it).
TREE = "/tmp/rec/cache/system-rootfs/0123/tree"
RECORDED = f"""\
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12335016k,nr_inodes=3083754,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683792k
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683792k
45 27 0:40 / {TREE}/proc rw,relatime - proc proc rw
46 27 0:41 / {TREE}/run rw,relatime - tmpfs tmpfs rw,size=1024k
47 46 0:42 / {TREE}/run/lock rw,relatime - tmpfs tmpfs rw,size=1024k
48 27 0:43 / {TREE}/srv/my\\040data rw,relatime - tmpfs my\\040tmpfs rw,size=1024k
49 27 254:0 /tmp/rec/cache/system-rootfs/0123/treeish {TREE}/srv rw,relatime - ext4 /dev/vda rw
"""

# Ubuntu 24.04 under systemd: optional fields (shared:N, master:N) before the separator.
UBUNTU = """\
25 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
26 25 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=1988k,mode=755
27 25 0:24 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
500 25 0:24 / /srv/target/proc rw,relatime shared:12 master:7 - proc proc rw
501 25 0:60 / /srv/target/tmp\\011tab\\012nl\\134bs rw,relatime - tmpfs none rw
"""


def test_fields_are_read_from_a_recorded_table() -> None:
    mounts = parse_mountinfo(RECORDED)
    assert len(mounts) == 10
    assert mounts[0] == Mount(
        mount_id=22, parent_id=27, mount_point=Path("/proc"), fs_type="proc", source="proc"
    )
    lock = mounts[7]
    assert (lock.mount_id, lock.parent_id, lock.mount_point) == (47, 46, Path(f"{TREE}/run/lock"))
    assert (mounts[9].fs_type, mounts[9].source) == ("ext4", "/dev/vda")


def test_escaped_paths_and_sources_are_decoded() -> None:
    spaced = parse_mountinfo(RECORDED)[8]
    assert spaced.mount_point == Path(f"{TREE}/srv/my data")
    assert spaced.source == "my tmpfs"
    odd = parse_mountinfo(UBUNTU)[4]
    assert odd.mount_point == Path("/srv/target/tmp\ttab\nnl\\bs")


def test_optional_fields_before_the_separator_are_skipped() -> None:
    proc = parse_mountinfo(UBUNTU)[3]
    assert (proc.mount_point, proc.fs_type, proc.source) == (
        Path("/srv/target/proc"),
        "proc",
        "proc",
    )


def test_a_line_that_is_not_mountinfo_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"mountinfo line 2: cannot parse 'proc /proc proc rw"):
        parse_mountinfo("22 27 0:21 / /proc rw - proc proc rw\nproc /proc proc rw 0 0\n")


def test_mounts_under_a_tree_come_last_mounted_first() -> None:
    points = [str(m.mount_point) for m in mounts_under(Path(TREE), RECORDED)]
    # The bind over srv/ first: with it in place "srv/my data" does not resolve.
    assert points == [
        f"{TREE}/srv",
        f"{TREE}/srv/my data",
        f"{TREE}/run/lock",
        f"{TREE}/run",
        f"{TREE}/proc",
    ]


def test_a_sibling_with_a_longer_name_is_not_under_the_tree() -> None:
    text = f"60 27 0:50 / {TREE}ish/proc rw - proc proc rw\n61 27 0:51 / {TREE} rw - tmpfs t rw\n"
    assert [m.mount_id for m in mounts_under(Path(TREE), text)] == [61]  # the tree itself
    assert mounts_under(Path(TREE + "/proc"), RECORDED)[0].mount_id == 45
    assert mounts_under(Path("/nowhere"), RECORDED) == []


def test_stacked_mounts_on_one_path_are_each_listed() -> None:
    assert [m.mount_id for m in mounts_under(Path("/dev/shm"), RECORDED)] == [30, 25]


def test_the_clear_command_unmounts_in_that_order_and_quotes_paths() -> None:
    command = clear_command(mounts_under(Path(TREE), RECORDED))
    assert command == (
        f"sudo umount {TREE}/srv '{TREE}/srv/my data' {TREE}/run/lock {TREE}/run {TREE}/proc"
    )
