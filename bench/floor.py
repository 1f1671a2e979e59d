"""The framework floor: bare Starlette returning fixed bytes, served like the service.

``BENCH_FLOOR_BODY`` (a file path) holds the bytes to return, so the reference
answers exactly what the service's cached product read answers.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = Path(os.environ["BENCH_FLOOR_BODY"]).read_bytes()


async def product(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/api/v1/products/{product_id}", product)])
