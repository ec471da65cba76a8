"""The FastAPI app of `mtl serve`: one POST route per task of the model, /health, /info, /metrics, /docs, the page.

Every refusal is a JSON object {"error": "..."} naming the field or the limit, with a 4xx code (or 503 while
loading or past the per-request timeout); no response ever carries a traceback.
"""

import asyncio
import contextlib
import json
import logging
import time
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from .. import tasks
from ..inference.predictor import missing_task_message
from .service import RequestError, Service

log = logging.getLogger("mtl.serve")


def error_response(status: int, message: str, headers: dict | None = None, **more) -> JSONResponse:
    return JSONResponse({"error": message, **more}, status_code=status, headers=headers)


def json_response(obj) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False).encode("utf-8"), media_type="application/json")


def field_name(loc) -> str:
    """('body', 'questions', 0, 'context') -> 'questions[0].context'."""
    name = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def validation_response(err: RequestValidationError) -> JSONResponse:
    errors = err.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        found = next(e for e in errors if e["type"] == "json_invalid")
        at = found["loc"][-1] if isinstance(found["loc"][-1], int) else "?"
        return error_response(400, f"the body is not valid JSON: {found['ctx']['error']} (at character {at})")
    problems = []
    for e in errors:
        name = field_name(e["loc"])
        if name == "body" and e["type"] == "missing":
            problems.append({"field": "body", "message": "the body is empty: send a JSON object"})
        elif name == "body" and e["type"] == "model_attributes_type":
            problems.append({"field": "body", "message": "the body must be a JSON object"})
        else:
            problems.append({"field": name, "message": e["msg"].removeprefix("Value error, ")})
    message = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return error_response(422, message + more, detail=problems)


class Guard:
    """Pure ASGI middleware in front of everything: metrics per route, and the body checks that come before
    JSON parsing: its size (413), its content type (415), UTF-8 (400)."""

    def __init__(self, app, service: Service, routes: set[str]):
        self.app, self.service, self.routes = app, service, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def send_noting_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if scope["method"] == "POST":
                body = await self.read_body(scope, receive)
                if isinstance(body, Response):
                    return await body(scope, receive, send_noting_status)
                receive = replay(body, receive)
            await self.app(scope, receive, send_noting_status)
        finally:
            route = scope["path"] if scope["path"] in self.routes else "other"
            self.service.metrics.observe(route, status[0], time.perf_counter() - started)

    async def read_body(self, scope, receive) -> bytes | Response:
        limit = self.service.settings.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        kind = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind != "application/json":
            return error_response(415, f"send the body as application/json, not {kind}")
        too_large = error_response(413, f"the body is larger than {limit} bytes")
        if headers.get("content-length", "0").isdigit() and int(headers.get("content-length", "0")) > limit:
            return too_large
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return Response(status_code=499)  # nobody is listening any more
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return too_large
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            return error_response(400, f"the body is not UTF-8 text (byte {err.start})")
        return body


def replay(body: bytes, receive):
    sent = False

    async def receive_again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again


def task_endpoint(service: Service, task):
    model = task.request_model()

    async def endpoint(body: model) -> Response:
        return json_response(await service.answer(task, body))

    endpoint.__name__ = f"predict_{task.name}"
    endpoint.__doc__ = f"{task.title} predictions: each result is one line of `mtl predict-{task.name} --format jsonl`."
    return endpoint


def missing_endpoint(service: Service, name: str):
    async def endpoint() -> Response:
        return error_response(404, missing_task_message(name, service.spec.tasks))

    return endpoint


def create_app(service: Service) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.start()
        if not service.ready:  # a caller that did not load first: load now, /health says when
            asyncio.get_running_loop().run_in_executor(service.worker, service.load)
        runner = asyncio.create_task(service.batcher.run())
        yield
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        service.worker.shutdown(wait=True)

    app = FastAPI(
        title="mtl serve",
        description="Predictions of one mtl model: " + ", ".join(tasks.get(t).title for t in service.spec.tasks),
        lifespan=lifespan,
    )

    @app.exception_handler(RequestError)
    async def refused(request: Request, err: RequestError):
        return error_response(err.status, err.message, err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        return validation_response(err)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        message = err.detail if err.status_code != 404 else f"no route {request.method} {request.url.path}"
        return error_response(err.status_code, str(message), getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def failed(request: Request, err: Exception):
        log.exception("prediction failed")
        return error_response(500, f"the prediction failed ({type(err).__name__}); see the server log")

    for name in tasks.names():
        task = tasks.get(name)
        if name in service.spec.tasks:
            app.post(f"/{name}", summary=f"{task.title} predictions")(task_endpoint(service, task))
        else:
            app.post(f"/{name}", include_in_schema=False)(missing_endpoint(service, name))

    @app.get("/health", summary="200 once the model is loaded and warmed up, else 503")
    async def health():
        if service.ready:
            return {"status": "ok"}
        return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/info", summary="Tasks, labels, backbone, versions and limits")
    async def info():
        return service.info()

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics():
        return Response(service.metrics.text(), media_type=service.metrics.content_type)

    page = files("mtlcli.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page

    routes = {route.path for route in app.routes}
    app.add_middleware(Guard, service=service, routes=routes)
    return app
