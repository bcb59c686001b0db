"""Run a test sandbox (a FastAPI app) with uvicorn in a daemon thread on loopback."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI

from tests.managed import ManagedServer
from tests.orthanc import free_port


class ThreadedSandbox(ManagedServer):
    """Lifecycle shared by the sandboxes: ``start``/``stop`` and use as a context manager.

    Subclasses set ``label``, build their app in ``_app()`` and call ``_serve()`` at the end of
    their constructor (it picks the port and the client they forward upstream with).
    """

    label = "sandbox"
    port: int
    _server: uvicorn.Server
    _http: httpx.Client
    _thread: threading.Thread | None = None

    def _app(self) -> FastAPI:
        raise NotImplementedError

    def _serve(self) -> None:
        self.port = free_port()
        self._http = httpx.Client(timeout=30.0)
        config = uvicorn.Config(
            self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, name=self.label, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self.label} did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._http.close()
