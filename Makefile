# The two quick-start commands are `make run` and `make test`; both install into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format lock clean bench worker beat schema

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: install
	$(BIN)/inventory migrate
	$(BIN)/inventory seed --demo
	$(BIN)/inventory serve --host 127.0.0.1 --port 8000 --no-migrate

# Celery processes for jobs; they need INVENTORY_BROKER_URL (and the API's database).
worker: install
	$(BIN)/inventory worker

beat: install
	$(BIN)/inventory beat

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin requirements.lock after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--no-header --no-annotate -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 \
		--no-header --no-annotate -o requirements.runtime.lock

# Rewrite graphql_schema/schema.graphql (the SDL client generators read) after a schema change.
schema: install
	$(BIN)/python -m graphql_schema.sdl

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The service beside same-run references (the Starlette floor, PostgreSQL's COPY); see bench/.
bench: install
	$(BIN)/python -m bench
