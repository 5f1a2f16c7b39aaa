"""The support bundle over HTTP: create (API or the page's button), list, download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from host_service.support.service import BundleBusy, SupportBundles
from host_service.wsgi import HttpError, Request, Response

CHUNK = 256 * 1024


def download(path: Path) -> Response:
    """The file as an attachment, streamed."""
    size = path.stat().st_size
    handle = path.open("rb")

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(CHUNK):
                yield block

    return Response(
        200,
        chunks(),
        headers=[
            ("Content-Length", str(size)),
            ("Content-Disposition", f'attachment; filename="{quote(path.name)}"'),
        ],
        content_type="application/gzip",
    )


class SupportHttp:
    def __init__(self, bundles: SupportBundles) -> None:
        self.bundles = bundles

    def _create(self) -> Path:
        try:
            return self.bundles.create().path
        except BundleBusy as exc:
            raise HttpError(409, str(exc)) from exc
        except OSError as exc:
            raise HttpError(503, f"cannot write the bundle: {exc.strerror or exc}") from exc

    # -- API -------------------------------------------------------------------------------

    def api_create(self, request: Request) -> Response:
        path = self._create()
        return Response.json(
            {
                "name": path.name,
                "size": path.stat().st_size,
                "download": f"/support-bundle?name={quote(path.name)}",
            },
            201,
        )

    def api_list(self, request: Request) -> Response:
        return Response.json({"bundles": self.bundles.listing()})

    # -- pages -----------------------------------------------------------------------------

    def page_create(self, request: Request) -> Response:
        """The button: collect now and answer with the file itself (one click, no script)."""
        return download(self._create())

    def page_download(self, request: Request) -> Response:
        name = request.arg("name") or ""
        path = self.bundles.find(name)
        if path is None:
            raise HttpError(404, f"no support bundle called {name!r}")
        return download(path)
