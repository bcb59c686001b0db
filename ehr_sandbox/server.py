"""Run the sandbox on loopback in a background thread (tests) or in the foreground (make run)."""

from __future__ import annotations

import argparse
import socket
import threading
import time

import httpx
import uvicorn

from ehr_sandbox.app import create_app
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.state import SandboxState


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SandboxServer:
    """``with SandboxServer() as sandbox:`` serves on a free loopback port until exit."""

    def __init__(self, port: int | None = None, app_launch_url: str | None = None) -> None:
        self.port = port or free_port()
        self.state = SandboxState(base_url=f"http://127.0.0.1:{self.port}")
        if app_launch_url:
            self.state.app_launch_url = app_launch_url
        config = uvicorn.Config(
            create_app(self.state), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def fhir_base(self) -> str:
        return self.state.fhir_base

    def __enter__(self) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.state.base_url}/docs", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the EHR sandbox did not start")

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--app-launch-url", default="http://127.0.0.1:8000/launch")
    parser.add_argument("--client-id", default="capture-dev", help="registered public client")
    args = parser.parse_args()
    state = SandboxState(
        base_url=f"http://127.0.0.1:{args.port}", app_launch_url=args.app_launch_url
    )
    callback = args.app_launch_url.rsplit("/launch", 1)[0] + "/launch/callback"
    register_client(state, args.client_id, callback)
    print(f"EHR sandbox (synthetic patients only) on {state.base_url}/ : click 'Launch capture'")
    uvicorn.run(create_app(state), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
