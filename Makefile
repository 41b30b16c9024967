# Kangaroo: `make run` serves a demo, `make test` runs the suite. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := kangaroo.settings

.PHONY: run test lint check venv clean worker watch bench messages

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.base: $(VENV)/.created requirements/base.txt
	$(PY) -m pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

venv: $(VENV)/.dev

# The embedded shape: SQLite in var/, jobs inline, in-memory websockets, console e-mail.
# DEBUG is on because this serves plain HTTP on the loopback address.
run: $(VENV)/.base
	DEBUG=$${DEBUG:-true} $(PY) manage.py prepare
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --no-input
	DEBUG=$${DEBUG:-true} $(PY) manage.py collectstatic --no-input --verbosity 0
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo
	@echo "Admin:    http://127.0.0.1:$(PORT)/admin/"
	@echo "API docs: http://127.0.0.1:$(PORT)/api/docs/"
# The periodic runner (kangaroo/schedule.py: silent devices go offline, abandoned jobs are
# settled) runs next to the server, and both stop together: on Ctrl-C, when make is
# killed, or when the server fails to start.
	export PORTAL_URL=$${PORTAL_URL:-http://127.0.0.1:$(PORT)}; \
	DEBUG=$${DEBUG:-true} $(PY) manage.py periodic & watcher=$$!; \
	DEBUG=$${DEBUG:-true} $(VENV)/bin/uvicorn kangaroo.asgi:application --host 127.0.0.1 --port $(PORT) & server=$$!; \
	trap 'kill $$watcher $$server 2>/dev/null; wait' EXIT INT TERM; \
	wait $$server

test: $(VENV)/.dev
	$(VENV)/bin/pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

check: $(VENV)/.dev
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

# The Traditional Chinese catalogue from the code and templates (and kangaroo/vendor_texts.py).
# Locations name files, not lines, so moving code does not rewrite the catalogue; texts no
# longer used are dropped. Translate what it adds (tests/test_i18n.py lists what is missing),
# then `make messages` again compiles. The compiled .mo is committed (a fresh machine may lack gettext).
messages: $(VENV)/.dev
	$(PY) manage.py makemessages -l zh_Hant --add-location file --no-obsolete --verbosity 0
	$(PY) manage.py compilemessages -l zh_Hant --verbosity 0

# --with-scheduler: jobs waiting out a retry backoff go back to the queue on time.
worker: $(VENV)/.base
	$(PY) manage.py rqworker --with-scheduler default

watch: $(VENV)/.base
	$(PY) manage.py periodic

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# Every benchmark on this machine's PostgreSQL and Redis, then one table of their figures
# beside baselines measured in the same run (see bench/README.md, "Latest table").
# BENCH_ARGS go to bench/run_all.py: make bench BENCH_ARGS=--quick for small sizes.
bench: $(VENV)/.dev
	$(PY) bench/run_all.py $(BENCH_ARGS)
