# Rapport: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
PUBLIC_URL ?= http://$(HOST):$(PORT)
FLASK := $(BIN)/flask --app app

export PUBLIC_URL

# Web server processes `make run` starts (gunicorn): two per core serve a door on a laptop.
WORKERS ?= 4
# Threads per process: a phone on a slow network holding its connection open ties up one
# thread, not a whole process.
THREADS ?= 8

.PHONY: run dev test screenshots lint format lock clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The lock files pin every package, direct and indirect; `make lock` rewrites them from pyproject.toml.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements-dev.lock | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e '.[dev]'
	touch $@ $(VENV)/.installed

instance/config.py:
	mkdir -p instance
	$(PYTHON) -c "import secrets; print(f'SECRET_KEY = {secrets.token_hex(32)!r}')" > $@
	@echo "Wrote a new SECRET_KEY to $@"

# A real deployment on one machine: gunicorn (WORKERS processes) and the email worker.
run: $(VENV)/.installed instance/config.py
	$(FLASK) db upgrade
	$(FLASK) demo
	@echo "Starting the email worker and the web server (Ctrl+C stops both)."
	@$(FLASK) outbox worker & worker=$$!; \
	$(BIN)/gunicorn --workers $(WORKERS) --worker-class gthread --threads $(THREADS) \
		--bind $(HOST):$(PORT) --access-logfile - 'app:create_app()' & web=$$!; \
	trap 'kill -TERM $$worker $$web 2>/dev/null; wait $$worker $$web; exit 0' INT TERM; \
	wait $$web; kill -TERM $$worker 2>/dev/null; wait $$worker

# The same, with Flask's auto-reloading development server instead of gunicorn.
dev: $(VENV)/.installed instance/config.py
	$(FLASK) db upgrade
	$(FLASK) demo
	@echo "Starting the email worker and the development server (Ctrl+C stops both)."
	@$(FLASK) outbox worker & worker=$$!; \
	$(FLASK) run --debug --host $(HOST) --port $(PORT) & web=$$!; \
	trap 'kill -TERM $$worker $$web 2>/dev/null; wait $$worker $$web; exit 0' INT TERM; \
	wait $$web; kill -TERM $$worker 2>/dev/null; wait $$worker

# Test files run side by side, one per CPU (PYTEST_WORKERS=0 runs them in one process).
PYTEST_WORKERS ?= auto

test: $(VENV)/.installed-dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Retake the README's pictures in docs/screenshots/ in headless Chromium (Debian's chromium).
screenshots: $(VENV)/.installed-dev
	UPDATE_SCREENSHOTS=1 REQUIRE_BROWSER=1 FAIL_ON_SKIP=1 \
		$(BIN)/pytest -q tests/browser/test_checkin.py::test_documentation_screenshots \
		tests/browser/test_community.py \
		tests/browser/test_door.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

LOCK := $(BIN)/uv pip compile pyproject.toml --python-version 3.11 --quiet --no-header \
	--annotation-style line --upgrade

lock: | $(BIN)/activate
	$(BIN)/pip install --quiet uv
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
