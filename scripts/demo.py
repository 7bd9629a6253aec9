"""`make demo`: the shop as it runs in production, on one machine with nothing to install.

Production settings (DEBUG off) except what needs a real host (HTTPS, mail, Stripe's key).
Steps, each announced on its own line: check the ports, start fakestripe (the Stripe
emulator, state kept in DEMO_DIR), migrate the SQLite database, collect static files, seed the
demo (users, catalog, webhook endpoint), start a real Celery worker with its beat scheduler on
an embedded broker (kombu's filesystem transport in DEMO_DIR/broker: the production retry
schedule and periodic tasks, no server), then serve the site until Ctrl-C or SIGTERM, which
stop every child.

Environment: DEMO_PORT (8000), FAKESTRIPE_PORT (12111), DEMO_DIR (.demo), DATABASE_URL.
Exits 2 with a sentence saying which variable to set when a port is taken.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SLOW_STEP = 5.0  # seconds before a silent step says what it is waiting on


_OUTPUT = threading.Lock()


def say(message: str) -> None:
    """One whole line at a time: the children's output (read by threads) never glues to ours."""
    with _OUTPUT:
        sys.stdout.write(f"{message}\n")
        sys.stdout.flush()


class DemoError(Exception):
    """A step failed; the message says what to do."""


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port (as ours do, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_ports(ports: dict[str, int]) -> None:
    for variable, port in ports.items():
        if not port_free(port):
            raise DemoError(
                f"port {port} is in use; set {variable}=... to another port "
                f"(e.g. make demo {variable}={port + 1})"
            )


class Child:
    """A child process in its own process group, its output prefixed and passed through."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], ready: str | None = None):
        self.name = name
        self.ready_pattern = re.compile(ready) if ready else None
        self.ready = threading.Event()
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, text=True, bufsize=1,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._pump, name=f"{name}-output", daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines = [*self.lines[-50:], line]
            if self.ready_pattern and self.ready_pattern.search(line):
                self.ready.set()
            say(f"  [{self.name}] {line}")

    def wait_ready(self, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None:
                raise DemoError(f"{self.name} exited ({self.proc.returncode}) before {what}")
            if time.monotonic() > deadline:
                raise DemoError(f"{self.name} did not get {what} within {seconds:.0f} s")

    def stop(self, seconds: float = 15) -> None:
        """SIGTERM to the process (a worker finishes its tasks and stops its pool), then
        SIGKILL to whatever is left of its group."""
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=seconds)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(2)


def wait_for_http(url: str, seconds: float, child: Child) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise DemoError(f"{child.name} exited ({child.proc.returncode}) while starting")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error still means it is serving
                return
            time.sleep(0.2)
    raise DemoError(f"{child.name} did not answer at {url} within {seconds:.0f} s")


def migrate(env: dict[str, str]) -> None:
    """manage.py migrate, condensed: a count, and the name of a migration that takes long."""
    proc = subprocess.Popen(
        [PY, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output, current, since, told = "", None, time.monotonic(), set()
    started = time.monotonic()
    try:
        while True:
            readable, _, _ = select.select([proc.stdout], [], [], 1.0)
            if readable:
                chunk = os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
                if not chunk:
                    break
                output += chunk
            # Django prints "  Applying app.0001_name..." first, and " OK" once it is done.
            names = re.findall(r"Applying (\S+?)\.\.\.", output)
            done = output.count(" OK\n")
            running = names[-1] if len(names) > done else None
            if running != current:
                current, since = running, time.monotonic()
            if current and current not in told and time.monotonic() - since > SLOW_STEP:
                told.add(current)
                say(f"  still applying {current} ({done} migrations done so far)")
        if proc.wait() != 0:
            raise DemoError(f"migrate failed (exit status {proc.returncode}):\n{output}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = output.count(" OK\n")
    if done:
        say(f"  applied {done} migrations in {time.monotonic() - started:.0f} s")
    else:
        say("  the database is up to date")


def production_like(demo_dir: Path) -> dict[str, str]:
    """Production settings (DEBUG off: branded error pages, hashed static files served by
    whitenoise), minus what needs a real host: HTTPS, a mail server, Stripe's own key."""
    secret = demo_dir / "secret_key"
    if not secret.exists():
        demo_dir.mkdir(parents=True, exist_ok=True)
        secret.write_text(secrets.token_urlsafe(50))
        secret.chmod(0o600)
    return {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secret.read_text().strip(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SESSION_COOKIE_SECURE": "false",
        "DJANGO_CSRF_COOKIE_SECURE": "false",
        "DJANGO_SECURE_HSTS_SECONDS": "0",
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "DJANGO_STATIC_ROOT": str(demo_dir / "static"),
        "STRIPE_SECRET_KEY": "sk_test_demo00000000000000000000000",
        # Staff sign in with the password alone, to try the console; production asks them for
        # an authenticator app's code too (STAFF_TWO_FACTOR, on without DEBUG).
        "STAFF_TWO_FACTOR": "false",
        # One web process (gunicorn's threads): rate-limit counters in its memory are shared
        # by every request it serves. Production keeps them in Redis (CACHE_URL).
        "DJANGO_SILENCED_SYSTEM_CHECKS": "django_ratelimit.E003",
    }


ENV_FILE_MARK = "# Written by make demo"
# What ./manage.py needs to reach the demo's database, emulator and worker (DEBUG on, as local
# development runs; the demo's own processes get the production-like set above).
ENV_FILE_KEYS = (
    "DATABASE_URL",
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "SITE_URL",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_FOLDER",
)


def env_file_write(path: Path, env: dict[str, str]) -> str:
    """The .env that settings read, so every ./manage.py command in this folder talks to the
    demo (its emulator, database and worker), never to api.stripe.com. A .env someone wrote
    themselves is left alone, and the line returned says what it lacks."""
    lines = [
        f"{ENV_FILE_MARK}: ./manage.py talks to the demo's database, Stripe emulator and worker.",
        "# Remove this first line to keep your own edits (make demo then leaves the file alone).",
        "DJANGO_DEBUG=true",
        *(f"{key}={env[key]}" for key in ENV_FILE_KEYS if env.get(key)),
    ]
    current = path.read_text() if path.exists() else ""
    if current and not current.startswith(ENV_FILE_MARK) and current.strip() != "DJANGO_DEBUG=true":
        if f"STRIPE_API_BASE={env['STRIPE_API_BASE']}" in current:
            return f"Your {path.name} points ./manage.py at this demo's emulator."
        return (
            f"Your own {path.name} is left as it is; for ./manage.py to talk to this demo, add: "
            f"STRIPE_API_BASE={env['STRIPE_API_BASE']}"
        )
    path.write_text("\n".join(lines) + "\n")
    return (
        f"Wrote {path.name}: ./manage.py commands (stripe_reconcile, ...) use this demo's emulator."
    )


def logins(demo_dir: Path) -> dict[str, str]:
    return {
        name: (demo_dir / f"{name}.password").read_text().strip()
        for name in ("customer", "admin", "support", "billing")
    }


def _ports() -> dict[str, int]:
    return {
        "DEMO_PORT": int(os.environ.get("DEMO_PORT", "8000")),
        "FAKESTRIPE_PORT": int(os.environ.get("FAKESTRIPE_PORT", "12111")),
    }


def run() -> int:
    ports = _ports()
    demo_port, stripe_port = ports["DEMO_PORT"], ports["FAKESTRIPE_PORT"]
    demo_dir = (ROOT / os.environ.get("DEMO_DIR", ".demo")).resolve()
    site = f"http://127.0.0.1:{demo_port}"
    env = {
        **os.environ,
        **production_like(demo_dir),
        "PYTHONUNBUFFERED": "1",
        "SITE_URL": site,
        "DEMO_DIR": str(demo_dir),
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_FOLDER": str(demo_dir / "broker"),
    }
    check_ports(ports)
    for folder in ("broker/queue", "broker/control"):
        (demo_dir / folder).mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    try:
        say(f"Starting the Stripe emulator on 127.0.0.1:{stripe_port} (state in {demo_dir})...")
        fakestripe = Child(
            "stripe",
            [PY, "-m", "fakestripe", "--host", "127.0.0.1", "--port", str(stripe_port),
             "--state", str(demo_dir / "fakestripe.jsonl")],
            env,
        )  # fmt: skip
        children.append(fakestripe)
        wait_for_http(f"http://127.0.0.1:{stripe_port}/_fake/health", 30, fakestripe)

        first = not (demo_dir / "customer.password").exists()
        say("Migrating the database" + (" (some seconds the first time)..." if first else "..."))
        migrate(env)

        say("Collecting static files (the stylesheet, the admin's)...")
        collected = subprocess.run(
            [PY, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"], cwd=ROOT,
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if collected.returncode != 0:
            raise DemoError(f"collectstatic failed:\n{collected.stdout}{collected.stderr}")

        say("Seeding the demo: users, catalog in the emulator, webhook endpoint...")
        seeded = subprocess.run(
            [PY, "manage.py", "demo_setup", "--verbosity", "0"], cwd=ROOT, env=env,
            capture_output=True, text=True,
        )  # fmt: skip
        if seeded.returncode != 0:
            raise DemoError(f"seeding failed:\n{seeded.stdout}{seeded.stderr}")

        say("Starting the Celery worker and its beat scheduler (embedded broker in .demo)...")
        worker = Child(
            "worker",
            [PY, "-m", "celery", "-A", "config", "worker", "--beat",
             "--schedule", str(demo_dir / "celerybeat-schedule"), "--pool=prefork",
             "--concurrency=2", "--loglevel=INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"demo-{demo_port}@%h"],
            env,
            ready=r"\bready\.",
        )  # fmt: skip
        children.append(worker)
        worker.wait_ready(60, "ready")
        say("  worker ready")

        say(f"Starting the web server on {site} ...")
        # gunicorn, as production serves (gunicorn.conf.py), in one process with threads.
        web = Child(
            "web",
            [PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{demo_port}",
             "--workers", "1", "--threads", "4"],
            {**env, "GUNICORN_ACCESS_LOG": "0"},
        )  # fmt: skip
        children.append(web)
        wait_for_http(f"{site}/healthz", 60, web)

        say(env_file_write(Path(os.environ.get("DEMO_ENV_FILE", ROOT / ".env")), env))
        passwords = logins(demo_dir)
        say("")
        say(f"The shop is serving at {site}/")
        say(f"  customer: log in as customer / {passwords['customer']} (or sign up)")
        say(f"  admin:    {site}/admin/  log in as admin / {passwords['admin']}")
        say(f"  support staff: support / {passwords['support']} (Support group), "
            f"billing / {passwords['billing']} (Billing admin group)")  # fmt: skip
        say("  staff sign in with the password only here (production also asks for a code)")
        say("  pay with 4242 4242 4242 4242; 4000 0000 0000 0002 is declined")
        say("Press Ctrl-C to stop.")
        say("")
        while all(child.proc.poll() is None for child in children):
            time.sleep(0.5)
        gone = next(child for child in children if child.proc.poll() is not None)
        raise DemoError(f"{gone.name} stopped unexpectedly ({gone.proc.returncode})")
    finally:
        if children:
            say("Stopping the demo...")
        for child in reversed(children):
            child.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    if sys.argv[1:] == ["--check-ports"]:
        # The Makefile asks first, before it writes anything.
        try:
            check_ports(_ports())
        except DemoError as exc:
            print(f"make demo: {exc}", file=sys.stderr, flush=True)
            return 2
        return 0
    # Ctrl-C (SIGINT from the terminal) and SIGTERM both end the demo: every child is
    # stopped, in order, and the exit status is 0, so make reports nothing.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        return run()
    except KeyboardInterrupt:
        say("Stopped.")
        return 0
    except DemoError as exc:
        print(f"make demo: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
