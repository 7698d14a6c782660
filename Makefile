# `make run` starts the gateway on a fresh clone; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test install serve lint bench bench-proxy clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(BIN)/.installed

.env:
	$(BIN)/python -c "import secrets,pathlib; t=pathlib.Path('.env.example').read_text(); \
	pathlib.Path('.env').write_text(t.replace('SECRET_KEY=change-me', 'SECRET_KEY=' + secrets.token_urlsafe(50)))"
	@echo "Created .env with a fresh SECRET_KEY (edit it to add provider keys)."

run: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py dev_setup --port $(PORT)
	$(BIN)/uvicorn gateway.asgi:application --host 127.0.0.1 --port $(PORT) --no-access-log

# Production-style: several worker processes, each one event loop.
serve: install
	$(BIN)/uvicorn gateway.asgi:application --host 0.0.0.0 --port $(PORT) --workers $(WORKERS) \
		--loop uvloop --http httptools --no-access-log

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

# Load benchmark (docs/performance.md): direct vs gateway at concurrency 1 and 50, stream and not, then
# 1,000 simultaneous calls; `make bench-proxy` adds LiteLLM Proxy, installed in an environment of its own.
bench: install
	$(BIN)/python -m bench.load compare
	$(BIN)/python -m bench.load burst

bench/.venv-proxy/bin/litellm:
	$(PYTHON) -m venv bench/.venv-proxy
	bench/.venv-proxy/bin/python -m pip install --quiet --disable-pip-version-check "litellm[proxy]==1.106.2"

bench-proxy: install bench/.venv-proxy/bin/litellm
	$(BIN)/python -m bench.load compare --proxy

clean:
	rm -rf $(VENV) staticfiles
