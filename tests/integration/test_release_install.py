"""`isobuild release bundle` from a plain `pip install`: a clean virtualenv with only the
package's own dependencies (no test or lint extra) packs and checks the topology.

The dependencies' wheels are kept in the fixture cache (keyed by pyproject.toml), so only
the first run needs PyPI; the project's own wheel is built fresh from the checkout.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, unavailable
from tests.fixtures.standin_artifacts import StandinArtifacts


def _pip(
    python: Path | str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, check=False, cwd=cwd, timeout=900,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="session")
def wheelhouse(fixture_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel (fresh) plus its dependencies' wheels (cached by pyproject.toml)."""
    key = hashlib.sha256((PROJECT_ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    deps = fixture_cache / "wheelhouse" / key
    if not (deps / ".complete").is_file():
        deps.mkdir(parents=True, exist_ok=True)
        result = _pip(sys.executable, "wheel", "--quiet", "--wheel-dir", str(deps),
                      str(PROJECT_ROOT))  # fmt: skip
        if result.returncode == 0:  # the build backend, for offline builds of the project
            result = _pip(sys.executable, "download", "--quiet", "--dest", str(deps),
                          "setuptools>=77", "wheel")  # fmt: skip
        if result.returncode != 0:
            unavailable(f"pip could not build the wheelhouse (PyPI unreachable?): {result.stderr}")
        (deps / ".complete").touch()
    house = tmp_path_factory.mktemp("wheelhouse")
    result = _pip(sys.executable, "wheel", "--quiet", "--no-deps", "--no-index",
                  "--find-links", str(deps), "--wheel-dir", str(house),
                  str(PROJECT_ROOT))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return house


def test_release_bundle_runs_from_a_plain_install(
    wheelhouse: Path, fixture_cache: Path, standin_artifacts_dir: StandinArtifacts, tmp_path: Path
) -> None:
    key = hashlib.sha256((PROJECT_ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    deps = fixture_cache / "wheelhouse" / key
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    (project_wheel,) = wheelhouse.glob("isobuild-*.whl")
    # --no-index: only the cached wheels; no extra is named, so only `dependencies` install.
    installed = _pip(python, "install", "--quiet", "--no-index", "--find-links", str(deps),
                     str(project_wheel))  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    frozen = _pip(python, "freeze").stdout.lower().splitlines()
    names = {line.split("==")[0].split(" @ ")[0] for line in frozen}
    assert not names & {"pytest", "ruff", "mypy", "paramiko", "playwright"}, names
    output = tmp_path / "bundle.tar"
    # Run outside the checkout so nothing but the installed package can be imported.
    result = subprocess.run(
        [str(env_dir / "bin" / "isobuild"), "release", "bundle", "--output", str(output),
         "--flux-dir", str(PROJECT_ROOT / "flux"),
         "--lock", str(standin_artifacts_dir.lock_path),
         "--mirror", str(standin_artifacts_dir.directory),
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600,
        stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().startswith("sha256:")
    assert output.is_file()
