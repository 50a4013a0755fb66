# The front door: every command the README shows is a target here.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Tools our users use (grpcurl, ghz) are built with `go install` into .tools/.
TOOLS := $(CURDIR)/.tools/bin
export PATH := $(TOOLS):$(PATH)
PROTOS := $(wildcard protos/energy/v1/*.proto)
DESCRIPTORS := client/energy/v1/descriptors.binpb
RENDERED_SQL := server/energy_server/storage/sql
GRPCURL_VERSION := v1.9.4
GHZ_VERSION := v0.120.0
# Plugins of buf.gen.yaml (clients in other languages) and the grpcui web page.
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
PROTOC_GEN_ES_VERSION := 2.17.0
TYPESCRIPT_VERSION := 5.9.3
# Where `make ghz` sends its load, and for how long per profile.
ENERGY_TARGET ?= localhost:50051
GHZ_DURATION ?= 10s
# Where ghz learns the contract: the server's reflection, or the files of protos/.
GHZ_SOURCE ?= reflection
# `make bench`: days of history (10,000 meters and 10,000 vehicles, one reading a minute) at the
# second measurement of the reads (the first is at 1 day).
BENCH_DAYS ?= 7
# `make token`: the name logs will show for the token's calls, and its scopes.
NAME ?= client
SCOPES ?= ingest

.PHONY: help install run migrate maintain token backfill test test-citus test-faults lint fmt gen check-gen tools clients grpcui breaking ghz bench bench-citus bench-quick bench-tls profile clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# The root distribution holds the server and the client (client/ is the client alone).
	$(BIN)/pip uninstall --quiet --yes energy-client 2>/dev/null || true
	$(BIN)/pip install --quiet -e '.[dev,embedded,tracing]'
	touch $@

install: $(STAMP) ## create .venv with the service, the client and the dev tools

run: $(STAMP) ## serve on :50051 (embedded PostgreSQL unless DATABASE_URL is set)
	$(PY) -m energy_server serve

migrate: $(STAMP) ## apply pending migrations and exit
	$(PY) -m energy_server migrate

token: $(STAMP) ## make a bearer token and its ENERGY_AUTH_TOKENS_FILE line (NAME=, SCOPES=)
	$(PY) -m energy_server token $(NAME) --scopes $(SCOPES)

maintain: $(STAMP) ## partition maintenance once: create partitions ahead, drop what retention expired
	$(PY) -m energy_server maintain

backfill: $(STAMP) ## rebuild the hourly rollups from history
	$(PY) -m energy_server backfill

$(TOOLS)/grpcurl:
	GOBIN=$(TOOLS) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

$(TOOLS)/ghz:
	GOBIN=$(TOOLS) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# protoc-gen-es, and what the TypeScript it writes needs to type-check.
$(TOOLS)/protoc-gen-es:
	npm install --silent --no-audit --no-fund --prefix .tools/npm \
		@bufbuild/protoc-gen-es@$(PROTOC_GEN_ES_VERSION) @bufbuild/protobuf@$(PROTOC_GEN_ES_VERSION) typescript@$(TYPESCRIPT_VERSION)
	ln -sf ../npm/node_modules/.bin/protoc-gen-es $@

# Pinned in scripts/grpcui/go.mod (see there why not `go install`).
$(TOOLS)/grpcui: scripts/grpcui/go.mod scripts/grpcui/go.sum
	cd scripts/grpcui && go build -o $@ github.com/fullstorydev/grpcui/cmd/grpcui

tools: $(TOOLS)/grpcurl $(TOOLS)/ghz $(TOOLS)/grpcui ## build grpcurl, ghz and grpcui into .tools/bin

grpcui: $(TOOLS)/grpcui ## open grpcui, the web page for every RPC, on the server at ENERGY_TARGET
	$(TOOLS)/grpcui -plaintext $(ENERGY_TARGET)

clients: $(STAMP) $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/protoc-gen-es ## generate Go and TypeScript clients into gen/ (buf.gen.yaml); build the Go example
	rm -rf gen/go/energy gen/ts
	$(BIN)/buf generate
	ln -sfn ../../.tools/npm/node_modules gen/ts/node_modules
	.tools/npm/node_modules/.bin/tsc --noEmit --strict --module nodenext --moduleResolution nodenext \
		--target es2022 gen/ts/energy/v1/*.ts
	cd examples/go && go build -o $(TOOLS)/energy-example-go .

test: $(STAMP) tools clients ## run the test suite (embedded PostgreSQL unless DATABASE_URL is set)
	$(PY) -m pytest -m "not faults"

test-citus: $(STAMP) tools ## ingest, analytics, property and replica tests on a throw-away Citus cluster (as root)
	scripts/test-citus.sh

test-faults: $(STAMP) tools ## the fault suite: kill -9, PostgreSQL restarts, overload, dead peers, limits
	$(PY) -m pytest -m faults -rA

lint: $(STAMP) ## ruff, ruff format --check, mypy --strict, buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy server client/energy tests bench scripts
	$(BIN)/buf lint

fmt: $(STAMP) ## format hand-written Python
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

gen: $(STAMP) ## regenerate client/energy/v1 and docs/api.md from protos/, and the rendered SQL
	rm -f client/energy/v1/*_pb2*.py client/energy/v1/*_pb2*.pyi client/energy/v1/*.proto $(DESCRIPTORS)
	$(PY) -m grpc_tools.protoc -Iprotos -Ithird_party/googleapis \
		--python_out=client --pyi_out=client --grpc_python_out=client \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=quiet:client \
		$(PROTOS)
	@# With comments (source info), for server reflection and the API reference.
	$(PY) -m grpc_tools.protoc -Iprotos -Ithird_party/googleapis --include_source_info --descriptor_set_out=$(DESCRIPTORS) $(PROTOS)
	@# The contract ships inside the client distribution, where protoc, grpcurl and ghz can find it.
	cp $(PROTOS) client/energy/v1/
	$(PY) scripts/api_reference.py $(DESCRIPTORS) docs/api.md
	@# Every composed statement as plain SQL, for review and diffs.
	$(PY) scripts/render_sql.py $(RENDERED_SQL)

# Compatibility of energy.v1 (README, "The contract"): the protos against those of
# another commit, by default the previous one; FILE rules, so generated code in
# every language stays source-compatible.
BREAKING_AGAINST ?= HEAD~1
breaking: $(STAMP) ## buf breaking: protos/ against BREAKING_AGAINST (default HEAD~1)
	@if git rev-parse -q --verify "$(BREAKING_AGAINST)^{commit}" >/dev/null; then \
		$(BIN)/buf breaking --against ".git#ref=$(BREAKING_AGAINST)" && echo "buf breaking: no breaking change against $(BREAKING_AGAINST)"; \
	else echo "buf breaking: $(BREAKING_AGAINST) is not a commit here (a first commit or a shallow clone); nothing to compare" >&2; fi

check-gen: gen ## fail when the committed generated code is not what `make gen` writes
	@git add -N client/energy/v1 docs/api.md $(RENDERED_SQL) && git diff --exit-code --stat -- client/energy/v1 docs/api.md '$(RENDERED_SQL)/*.sql' \
		|| { echo "generated code is stale: run 'make gen' and commit" >&2; exit 1; }

ghz: $(STAMP) $(TOOLS)/ghz ## run the ghz profiles (bench/ghz) against a running server at ENERGY_TARGET
	$(PY) bench/ghz/run.py --target $(ENERGY_TARGET) --duration $(GHZ_DURATION) --source $(GHZ_SOURCE)

bench: $(STAMP) ## anchors L/S/T, the service per shape, a sweep, reads at 1 and 7 days of history, expiry, 10,000 open streams
	$(PY) bench/ingest.py
	$(PY) bench/analytics.py --days $(BENCH_DAYS)
	$(PY) bench/streams.py
	$(PY) bench/report.py

bench-citus: $(STAMP) ## ingest (a), (b) and reads on a Citus cluster beside one PostgreSQL 15, same run (as root)
	$(PY) bench/citus.py

bench-quick: $(STAMP) ## a seconds-long smoke run of the benchmarks (tiny sizes)
	$(PY) bench/ingest.py --quick
	$(PY) bench/analytics.py --quick
	$(PY) bench/streams.py --quick
	$(PY) bench/report.py --quick
	$(PY) bench/tls.py --quick
	$(PY) bench/profile.py --quick

profile: $(STAMP) ## py-spy flame graphs and where the time goes, server under loads (a), (b), (c) -> bench/results/profile-*.svg
	$(PY) bench/profile.py

bench-tls: $(STAMP) ## ingest throughput with TLS on vs off (same data and load)
	$(PY) bench/tls.py

clean: ## remove the virtualenv, tools, generated clients and the embedded database's data
	rm -rf $(VENV) .tools .data gen/go/energy gen/ts
