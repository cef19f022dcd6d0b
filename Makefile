# The two commands a new user needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
CARGO ?= cargo
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/chat
export REDIS_URL ?= redis://127.0.0.1:6379
# Where the tests create their databases: the server of DATABASE_URL, whatever its database name.
export TEST_DATABASE_URL ?= $(patsubst %/,%,$(dir $(DATABASE_URL)))

.PHONY: run test services migrate build lint fmt clean-test-dbs postman security docs-examples schemathesis chaos chaos-short compose-test e2e e2e-bench bench-door001 load load-stop scale-out

## Start PostgreSQL and Redis if needed, create and migrate the database, serve on CHAT_LISTEN.
run: services
	$(CARGO) run --release --locked -p chat-api --bin chat-server -- serve

## Run every test against the real PostgreSQL and Redis (started if needed), then a few seconds
## of each load scenario (scripts/load-smoke.sh); ends with one summary line over all test
## binaries and the smoke run ("tests: N passed, N failed").
test: services clean-test-dbs
	@mkdir -p target
	@set -o pipefail; rc=0; \
	  $(CARGO) test --workspace --locked 2>&1 | tee target/test-output.log || rc=1; \
	  bash scripts/load-smoke.sh 2>&1 | tee -a target/test-output.log || rc=1; \
	  awk '/^test result:/ {p += $$4; f += $$6} END {printf "tests: %d passed, %d failed\n", p, f}' target/test-output.log; \
	  exit $$rc

## Run every shell example of README.md and docs/ in order against a live server and compare
## each block's output with the one printed under it (scripts/docs-examples.sh).
docs-examples: services
	$(CARGO) build --locked -p chat-api --bin chat-server
	bash scripts/docs-examples.sh

## schemathesis --checks all against the OpenAPI document and a live server (scripts/schemathesis.sh).
schemathesis: services
	$(CARGO) build --locked -p chat-api --bin chat-server
	bash scripts/schemathesis.sh

## Run the Postman collection (docs/postman/) with newman against a live server.
postman: services
	$(CARGO) build --locked -p chat-api --bin chat-server
	bash scripts/postman.sh

## The security regression suite (crates/security) against a server pair it starts on a fresh
## database; SECURITY_URL=http://host:port runs it against any live server instead.
security: services
	$(CARGO) build --locked -p chat-api -p chat-security --bins
	bash scripts/security.sh

## The fault-injection run (crates/chaos): its own PostgreSQL and Redis on free ports, two release
## instances, clients that reconnect, resume and resend; 3 rounds of kills, restarts and outages,
## then checks that no acknowledged message was lost, duplicated, gapped or reordered (~3 min).
## Options: make chaos ARGS="--rounds 5 --keep" (chat-chaos --help).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
chaos:
	$(CARGO) build --release --locked -p chat-api -p chat-chaos --bin chat-server --bin chat-chaos
	$(TARGET_DIR)/release/chat-chaos --server $(TARGET_DIR)/release/chat-server $(ARGS)

## Its short form, as CI runs it: one round against the debug build (~1 min).
chaos-short:
	$(CARGO) build --locked -p chat-api -p chat-chaos --bin chat-server --bin chat-chaos
	$(TARGET_DIR)/debug/chat-chaos --short --server $(TARGET_DIR)/debug/chat-server $(ARGS)

## The web client in a real browser (scripts/e2e.sh): Debian's chromium and e2e/'s npm packages
## installed if missing, node unit tests of the client's state, then two browser users on two
## instances (fresh database and Redis prefix) through every screen; screenshots in target/e2e/.
e2e: services
	$(CARGO) build --locked -p chat-api --bin chat-server
	bash scripts/e2e.sh

## The web client's performance figures (BENCHMARKS.md "Web client"): a user with 500 chats and
## a chat of 100,000 messages against the release build; target/e2e-bench.json.
e2e-bench: services
	$(CARGO) build --release --locked -p chat-api --bin chat-server
	bash scripts/e2e.sh bench

## Both compose stacks for real (scripts/compose-test.sh): Docker installed and started if
## needed, images pulled or made locally (scripts/compose-images.sh), the prod stack built, run
## and checked through nginx, the dev stack started; everything removed afterwards.
compose-test:
	bash scripts/compose-test.sh

## Make PostgreSQL and Redis reachable and create the application database.
services:
	@bash scripts/services.sh --create-db

## Apply pending migrations and exit.
migrate: services
	$(CARGO) run --release --locked -p chat-api --bin chat-server -- migrate

build:
	$(CARGO) build --release --locked -p chat-api --bin chat-server

## Formatting and lints, as CI checks them.
MACHETE := .tools/machete/bin/cargo-machete
lint: $(MACHETE)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(MACHETE)

## cargo-machete (unused dependencies), installed into .tools/ on first use (~2 min).
$(MACHETE):
	$(CARGO) install --locked --root .tools/machete cargo-machete --version 0.9.2

fmt:
	$(CARGO) fmt --all

## Drop test databases left behind by interrupted runs: t_<unix secs>_<hex> older than an hour
## (a run still going keeps its own).
clean-test-dbs:
	@psql "$(TEST_DATABASE_URL)/postgres" -tAc "SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9]+_[0-9a-f]{16}$$' AND split_part(datname, '_', 2)::bigint < extract(epoch FROM now()) - 3600" 2>/dev/null \
	  | while read -r db; do [ -n "$$db" ] && psql "$(TEST_DATABASE_URL)/postgres" -qc "DROP DATABASE IF EXISTS \"$$db\" WITH (FORCE)"; done; true

## One load scenario against a release load server (started if needed):
## make load SCENARIO=fanout ARGS="--groups 100 --members 100 --rate 1500"
load: services
	bash scripts/load.sh $(SCENARIO) $(ARGS)

## Door 001's whole-history read on 10,000 and 100,000 messages (time, server CPU and memory).
bench-door001: services
	bash scripts/bench-door001.sh

## Several instances at once, each with its share of the sockets (scripts/scale-out.sh): each
## instance's share of deliveries, CPU and decoded events, and what Redis sent.
## make scale-out ARGS="--spread 1:1:1:2 --groups 8 --members 50 --rate 10"
scale-out: services
	bash scripts/scale-out.sh $(ARGS)

## Stop the load server `make load` started.
load-stop:
	bash scripts/load.sh stop
