"""GET /docs: Swagger UI from this server alone, no CDN.

The page, its script and style sheet all come from here: Swagger UI's files
from the installed fastapi-offline package, the start-up script from us (an
inline one would need 'unsafe-inline' for scripts). The page's own CSP allows
only same-origin scripts; inline styles and data: images are what Swagger UI
itself needs.
"""

import html
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from authserver.api.security_headers import NOSNIFF, html_security_headers
from authserver.core.exceptions import NotFoundError

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
OPENAPI_PATH = "/openapi.json"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Fixed in the package version: a day of caching, revalidated after.
ASSET_CACHE = {"Cache-Control": "public, max-age=86400", **NOSNIFF}

# The installed package's copy of Swagger UI (a plain directory: wheels unpack).
ASSET_DIR = Path(str(files("fastapi_offline").joinpath("static")))
_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
# What the page runs once the bundle is loaded. The spec URL comes from the
# page (data-openapi-url), so the script is the same for every root path.
START_SCRIPT = b"""\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
"""
START_SCRIPT_NAME = "start.js"

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/{start}"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = html.escape(request.scope.get("root_path", ""), quote=True)
    page = PAGE.format(
        title=html.escape(request.app.title),
        assets=f"{root}{ASSETS_PATH}",
        openapi=f"{root}{OPENAPI_PATH}",
        start=START_SCRIPT_NAME,
    )
    return HTMLResponse(page, headers=html_security_headers(DOCS_CSP))


@router.get(f"{ASSETS_PATH}/{START_SCRIPT_NAME}")
async def start_script() -> Response:
    return Response(START_SCRIPT, media_type="text/javascript", headers=ASSET_CACHE)


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: Annotated[str, PathParam(max_length=64)]) -> FileResponse:
    # Only the named files: nothing else of the package (or the disk) is served.
    if name not in _ASSETS:
        raise NotFoundError(f"no asset {name}")
    return FileResponse(ASSET_DIR / name, headers=ASSET_CACHE)
