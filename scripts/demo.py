"""`make demo`: the product on SQLite with fakestripe beside it, demo data and a printed login.

Starts fakestripe (state kept in .demo/ between runs), migrates, seeds the demo through
`manage.py demo_setup`, then serves the site with runserver until Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def wait_until_up(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as exc:
            # 401 without a key still means the emulator is serving.
            if getattr(exc, "code", None):
                return
            time.sleep(0.2)
    raise SystemExit(f"fakestripe did not come up at {url}")


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # SIGTERM (and SIGINT, which a shell ignores for background jobs) end the demo like Ctrl-C,
    # so fakestripe and runserver are stopped with it instead of being left behind.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    port = os.environ.get("FAKESTRIPE_PORT", "12111")
    demo_port = os.environ.get("DEMO_PORT", "8000")
    env = {**os.environ, "DJANGO_DEBUG": "true", "SITE_URL": f"http://127.0.0.1:{demo_port}"}
    children = []
    try:
        fakestripe = subprocess.Popen(
            [PY, "-m", "fakestripe", "--host", "127.0.0.1", "--port", port,
             "--state", env.get("FAKESTRIPE_STATE", ".demo/fakestripe.jsonl")],
            cwd=ROOT, env=env,
        )  # fmt: skip
        children.append(fakestripe)
        wait_until_up(f"http://127.0.0.1:{port}/v1/account")
        subprocess.run([PY, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True)
        subprocess.run([PY, "manage.py", "demo_setup"], cwd=ROOT, env=env, check=True)
        server = subprocess.Popen(
            [PY, "manage.py", "runserver", f"127.0.0.1:{demo_port}"], cwd=ROOT, env=env
        )
        children.append(server)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()


if __name__ == "__main__":
    main()
