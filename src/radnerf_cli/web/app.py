"""The web app behind `radnerf serve` (FastAPI): a page of our own, a small JSON API and a live WebSocket.

    GET  /                          the page (static/index.html; plain HTML + JS, no build step)
    GET  /api/subjects              trained subjects and bundles of the workspace
    GET  /api/preview/{model}       one rendered frame (PNG)
    POST /api/render                multipart: model, file -> a queued render job
    GET  /api/jobs/{id}             its state and progress
    GET  /api/jobs/{id}/video       the mp4 (?download=1 to save it)
    WS   /ws/live?model=ID          microphone audio in, frames out (see live_ws)
"""

import asyncio
import tempfile
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from radnerf_cli.errors import InputError, RadNerfError
from radnerf_cli.web.catalog import Catalog
from radnerf_cli.web.jobs import RenderJobs
from radnerf_cli.web.uploads import MAX_UPLOAD_MB, UploadError, save_upload

STATIC = Path(__file__).parent / "static"


def create_app(workspace: Path | None = None, max_upload_mb: int = MAX_UPLOAD_MB, device: str | None = None,
               live_sizes=None) -> FastAPI:
    """The app for ``workspace`` (the module imports fastapi: `radnerf serve` imports it only when run)."""
    app = FastAPI(title="radnerf", docs_url=None, redoc_url=None)
    catalog = Catalog(workspace, device)
    jobs = RenderJobs(catalog, Path(tempfile.mkdtemp(prefix="radnerf-serve-")))
    app.state.catalog, app.state.jobs = catalog, jobs
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (STATIC / "index.html").read_text()

    @app.get("/api/subjects")
    def subjects() -> dict:
        return {"workspace": str(catalog.ws.root), "max_upload_mb": max_upload_mb,
                "models": [catalog.describe(m) for m in catalog.models()]}

    @app.get("/api/preview/{model_id:path}")
    async def preview(model_id: str):
        try:
            png = await run_in_threadpool(catalog.preview_png, model_id)
        except RadNerfError as e:
            return error(404, e.message)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/render")
    async def render(request: Request, model: str = Form(...), file: UploadFile = File(...)):
        declared = int(request.headers.get("content-length") or 0)
        if declared > (max_upload_mb + 1) * 1024 * 1024:
            return error(413, f"{file.filename}: larger than the {max_upload_mb} MB upload limit")
        try:
            catalog.find(model)
        except RadNerfError as e:
            return error(404, e.message)
        from radnerf_cli.engine.render_video import read_audio

        jid, folder = jobs.new_folder()
        name = Path(file.filename or "upload").name
        try:
            path = await save_upload(file, folder, max_upload_mb)
            await run_in_threadpool(read_audio, path)  # decodes it: corrupt, silent or too short fails here
        except UploadError as e:
            jobs.discard(folder)
            return error(e.status, e.message)
        except InputError as e:
            jobs.discard(folder)
            return error(422, e.message.replace(str(path), name))
        return jobs.submit(jid, folder, model, path).public()

    @app.get("/api/jobs/{jid}")
    def job(jid: str):
        j = jobs.jobs.get(jid)
        return j.public() if j else error(404, f"no render job {jid}")

    @app.get("/api/jobs/{jid}/video")
    def video(jid: str, download: int = 0):
        j = jobs.jobs.get(jid)
        if j is None or j.out is None or not j.out.is_file():
            return error(404, f"render job {jid} has no video (yet)")
        name = f"radnerf-{j.model.replace('/', '-')}-{jid}.mp4"
        return FileResponse(j.out, media_type="video/mp4", filename=name if download else None)

    @app.websocket("/ws/live")
    async def live(ws: WebSocket, model: str = ""):
        from radnerf_cli.engine.live import LiveEngine, LiveOptions
        from radnerf_cli.web.live_ws import LiveSession

        await ws.accept()
        try:
            head = await run_in_threadpool(catalog.load, model)
            opts = LiveOptions(sizes=live_sizes) if live_sizes else LiveOptions()
            engine = await run_in_threadpool(LiveEngine, head, opts)
            await run_in_threadpool(engine.warm_up)
        except (RadNerfError, ValueError) as e:
            await ws.send_json({"type": "error", "message": getattr(e, "message", str(e))})
            await ws.close()
            return
        session = LiveSession(engine, ws.send_bytes, ws.send_json, asyncio.get_running_loop())
        await ws.send_json({"type": "ready", "width": head.W, "height": head.H, "latency_ms": round(1000 * engine.latency),
                            "audio_wait_ms": round(1000 * engine.audio_wait), "levels": [lv.name for lv in engine.levels]})
        session.start()
        pump = asyncio.create_task(session.pump())
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("bytes") is not None:
                    try:
                        session.take(msg["bytes"])
                    except ValueError as e:
                        await ws.send_json({"type": "error", "message": str(e)})
                elif msg.get("text") == "end":  # no more audio: send the frames still owed, then close
                    session.engine.end()
                    await pump
                    await ws.close()
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            session.close()
            if not pump.done():
                pump.cancel()

    return app
