# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEMO_DIR := .demo
FAKESTRIPE_PORT ?= 12111
DEMO_PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint format bench lock browsers clean

$(STAMP): requirements.lock pyproject.toml
	@echo "Installing the dependencies into $(VENV) (a minute or two, first run only)..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements.lock
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

# Chromium for the browser tests comes from Debian (Playwright cannot download its own here).
browsers:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Debian's chromium (apt-get install chromium) for the browser tests"; fi; }

# The shop, a real Celery worker (embedded broker) and the Stripe emulator; see scripts/demo.py.
# Ports: make demo DEMO_PORT=8001 FAKESTRIPE_PORT=12112
demo: install
	@FAKESTRIPE_PORT=$(FAKESTRIPE_PORT) DEMO_PORT=$(DEMO_PORT) $(PY) scripts/demo.py --check-ports
	@mkdir -p $(DEMO_DIR)
	@# scripts/demo.py writes .env (read by settings) so ./manage.py talks to the demo, not Stripe.
	@# exec: make's child is the demo itself, which stops its own children on Ctrl-C/SIGTERM.
	@DEMO_DIR=$(DEMO_DIR) FAKESTRIPE_PORT=$(FAKESTRIPE_PORT) DEMO_PORT=$(DEMO_PORT) \
	  exec $(PY) scripts/demo.py

# The suite runs as a developer does (DEBUG on unless set); production settings are tested
# in subprocesses by tests/test_settings.py. Two parts: the tests that need no real Celery
# worker side by side in TEST_WORKERS processes (pytest-xdist, a test database each), then the
# worker tests one at a time (they share one broker: a worker takes any task on it). A part
# that PYTEST_ARGS leaves empty (exit 5: nothing collected) is not a failure.
TEST_WORKERS ?= auto
TEST_ENV = DJANGO_DEBUG=$${DJANGO_DEBUG:-true}
test: install browsers
	$(TEST_ENV) $(PY) -m pytest -n $(TEST_WORKERS) -m "not worker" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(TEST_ENV) $(PY) -m pytest -m worker $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: install
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# Re-resolve the pinned versions from pyproject.toml's ranges.
lock:
	rm -rf /tmp/lock-venv && $(PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet --upgrade pip
	/tmp/lock-venv/bin/pip install --quiet ".[dev]"
	/tmp/lock-venv/bin/pip freeze --exclude stripe-shop > requirements.lock

clean:
	rm -rf $(VENV) $(DEMO_DIR) staticfiles db.sqlite3
