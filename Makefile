# Smart Chat — the two commands.
#   make dev    start the whole system locally (DynamoDB Local + moto + local gateway)
#   make test   everything CI runs

SHELL := /bin/bash
CARGO ?= cargo

.PHONY: dev test tools browser-tools fmt lint unit-and-integration cfn-lint bench startup soak clean

## Start DynamoDB Local and moto server, create tables/queues from template.yaml, seed, serve HTTP + WebSocket.
dev: tools
	$(CARGO) run -p local-gateway

## Every check CI runs.
test: tools browser-tools fmt lint unit-and-integration cfn-lint

## The local AWS: moto and cfn-lint in .venv/, DynamoDB Local (and Java if missing) in .local/.
tools:
	@bash infra/scripts/python-tools.sh
	@bash infra/scripts/dynamodb-local.sh

## Chromium and ChromeDriver (Debian) for the dashboard's browser tests.
browser-tools:
	@bash infra/scripts/chromium.sh

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit, handler and end-to-end tests (each end-to-end test starts its own
# gateway and moto server on free loopback ports; one DynamoDB Local serves
# the whole suite, tables prefixed per test). Benches are compiled, not run.
unit-and-integration:
	$(CARGO) test --workspace --all-targets

cfn-lint:
	.venv/bin/cfn-lint template.yaml

## Criterion benchmarks, then the load bench on a stack of its own (not part of make test,
## which compiles both). BENCH_SECONDS: how long each rate runs.
BENCH_SECONDS ?= 20
bench: tools
	$(CARGO) bench -p domain
	$(CARGO) run -p local-gateway --bin latency -- suite $(BENCH_SECONDS)

## Release builds of every function: zip size, start-up against a minimal Lambda Runtime API,
## peak memory of one invocation (docs/performance.md).
startup: tools
	bash infra/scripts/startup.sh

## The soak on a stack of its own: 10,000 webhooks from 1,000 senders, each posted three
## times, 5 % of every dependency failing, consumers killed twice, 50 dashboards, 1,000
## answers; then every check read from the store (docs/reliability.md). `-- short` runs
## the two-minute version. SOAK_FAULTS / SOAK_RESTARTS change one condition.
soak: tools
	$(CARGO) run -p local-gateway --bin soak -- full

clean:
	$(CARGO) clean
	rm -rf .venv
