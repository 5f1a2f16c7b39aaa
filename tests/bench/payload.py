"""Payload fetch costs, as ratios to plain transfers measured in the same run.

- cold fetch over loopback HTTP (checksum file, streaming download, hash, admit) vs a bare
  ``requests`` streaming download of the same file;
- cache hit (the file is re-hashed on every use) vs reading the file once;
- fetch from a mirror directory vs ``shutil.copyfile``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

import requests

from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.fetch import Fetcher, make_source
from isobuild.artifacts.lockfile import load_lock
from isobuild.standin.artifacts import write_standins
from tests.fixtures.artifact_server import Served, _Handler

SIZE = 192 * 1024 * 1024  # about a real k3s binary plus a share of the airgap images
ROUNDS = 3


def _best(action: Callable[[], None], before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(ROUNDS):
        if before is not None:
            before()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def run(cache: Path) -> int:
    standins = cache / "bench-payload" / f"standins-{SIZE}"
    if not (standins / "payload.lock.yaml").is_file():
        write_standins(standins, force=True, filler=SIZE)
    lock = load_lock(standins / "payload.lock.yaml")
    pin = lock.k3s.files["binary"]
    data = (standins / "k3s" / pin.version / pin.name).read_bytes()

    served = Served()
    for item in (standins / "k3s" / pin.version).iterdir():
        served.files[f"/mirror/k3s/{pin.version}/{item.name}"] = item.read_bytes()
    handler = type("BenchHandler", (_Handler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/mirror"
    with tempfile.TemporaryDirectory(dir=cache) as scratch_name:
        scratch = Path(scratch_name)
        raw_target = scratch / "raw"
        cache_dir = scratch / "cache"

        def raw_download() -> None:
            url = f"{base}/k3s/{pin.version}/{pin.name}"
            with (
                requests.get(url, stream=True, timeout=60) as response,
                raw_target.open("wb") as out,
            ):
                for chunk in response.iter_content(64 * 1024):
                    out.write(chunk)

        def clear_cache() -> None:
            shutil.rmtree(cache_dir, ignore_errors=True)

        def fetch_http() -> None:
            Fetcher(ArtifactCache(cache_dir), make_source(base, progress=False)).fetch(pin)

        def fetch_dir() -> None:
            Fetcher(ArtifactCache(cache_dir), make_source(str(standins), progress=False)).fetch(pin)

        def cache_hit() -> None:
            assert ArtifactCache(cache_dir).lookup(pin.sha256) is not None

        def read_once() -> None:
            with raw_target.open("rb") as handle:
                while handle.read(1 << 20):
                    pass

        def copy_file() -> None:
            shutil.copyfile(standins / "k3s" / pin.version / pin.name, scratch / "copy")

        t_raw = _best(raw_download)
        t_http = _best(fetch_http, clear_cache)
        t_read = _best(read_once)
        t_hit = _best(cache_hit)
        t_copy = _best(copy_file)
        t_dir = _best(fetch_dir, clear_cache)
        assert hashlib.sha256(raw_target.read_bytes()).hexdigest() == pin.sha256
    server.shutdown()
    server.server_close()

    mib = len(data) / (1 << 20)
    rows = [
        ("cold fetch, loopback HTTP", t_http, "bare requests download", t_raw),
        ("cache hit (re-verified)", t_hit, "one read of the file", t_read),
        ("fetch from mirror dir", t_dir, "shutil.copyfile", t_copy),
    ]
    print(f"file: {mib:.0f} MiB, best of {ROUNDS}")
    print(f"{'measure':28} {'seconds':>8} {'baseline':24} {'seconds':>8} {'ratio':>6}")
    for label, value, base_label, base_value in rows:
        ratio = value / base_value if base_value else float("inf")
        print(f"{label:28} {value:8.3f} {base_label:24} {base_value:8.3f} {ratio:6.2f}x")
    return 0
