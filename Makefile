# ReplyDesk: `make run` (set up everything, then the app on http://localhost:8501) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run setup test lint typecheck bench eval faults system-deps postgres clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build (a bare `torch` would pull a multi-GB CUDA build)
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/replydesk setup --demo

# The worker (IMAP sync + SMTP send) runs beside the app and stops with it.
# Only this machine can reach it (127.0.0.1); for a team, put a TLS reverse proxy in front (README "Security").
run: setup
	@echo "ReplyDesk listens on http://127.0.0.1:8501 only (this machine); see README Security to serve a team."
	$(BIN)/replydesk worker & worker=$$!; trap "kill $$worker 2>/dev/null" EXIT; \
	$(BIN)/streamlit run streamlit_app.py --server.address 127.0.0.1 --server.port 8501 --server.headless true \
		--browser.gatherUsageStats false

# Debian packages the tests drive for real: Dovecot (IMAP) and Chromium (browser test).
system-deps:
	@if ! command -v dovecot >/dev/null || ! command -v chromium >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd chromium >/dev/null; \
	fi

# PostgreSQL must be reachable: the database tests run against it as well as SQLite, and fail (not skip) without it.
postgres:
	@pg_isready -h 127.0.0.1 -p 5432 -q || (command -v pg_ctlcluster >/dev/null && \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start) || true
	@pg_isready -h 127.0.0.1 -p 5432 || (echo "PostgreSQL is not reachable on 127.0.0.1:5432; start it (see README)" && exit 1)

test: $(STAMP) system-deps postgres
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q
	# The eval gate: a change that makes intents, language ID, retrieval, compliance or drafts worse fails here.
	REPLYDESK_NLP=fake REPLYDESK_DATA_DIR=$$(mktemp -d) $(BIN)/replydesk eval all --fast --quiet --fail-on-regression

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) system-deps postgres
	$(BIN)/python -m evals.bench

eval: $(STAMP)
	$(BIN)/replydesk eval all

# The fault suite (README "Reliability"): hostile mail, killed syncs, restarted Dovecot and PostgreSQL (this
# target restarts the local cluster), concurrent workers, SMTP crashes. Prints the table; about 20 minutes.
faults: $(STAMP) system-deps postgres
	$(BIN)/python -m evals.faults --full-size

clean:
	rm -rf data/replydesk.db* data/models .pytest_cache .mypy_cache .ruff_cache
