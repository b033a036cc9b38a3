# Smart Chat — the two commands.
#   make dev    start the whole system locally (moto + local gateway)
#   make test   everything CI runs

SHELL := /bin/bash
CARGO ?= cargo

.PHONY: dev test tools fmt lint unit-and-integration cfn-lint bench clean

## Start moto server, create tables/queues from template.yaml, seed, serve HTTP + WebSocket.
dev: tools
	$(CARGO) run -p local-gateway

## Every check CI runs.
test: tools fmt lint unit-and-integration cfn-lint

tools:
	@bash infra/scripts/python-tools.sh

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit, handler and end-to-end tests (each end-to-end test starts its own
# moto server on a free loopback port). Benches are compiled, not run.
unit-and-integration:
	$(CARGO) test --workspace --all-targets

cfn-lint:
	.venv/bin/cfn-lint template.yaml

## Criterion benchmarks (not part of make test).
bench:
	$(CARGO) bench -p shared

clean:
	$(CARGO) clean
	rm -rf .venv
