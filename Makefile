# mcp_auth — see README.md. Every target installs what it is missing first.
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
export PG_CONFIG

.PHONY: all bootstrap build install install-extensions test demo bench lint fmt clean

all: build

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	cargo build --release --workspace

## Both extensions into the PostgreSQL that $(PG_CONFIG) names.
install-extensions: bootstrap
	@# The library by rename, so that a running server never sees it half-written.
	scripts/install.sh
	$(MAKE) --no-print-directory -C extensions/mcp_mes install PG_CONFIG=$(PG_CONFIG)

## Both extensions, and the mcp-auth binary into /usr/local/bin.
install: install-extensions
	cargo build --release -p mcp-auth
	install -m 755 target/release/mcp-auth /usr/local/bin/mcp-auth

## Every test layer (unit, #[pg_test], pg_regress, isolation, dump/restore).
test: bootstrap
	@scripts/test.sh

## A private cluster, the extension, a demo key and its validation.
demo: install-extensions
	@scripts/demo.sh

## Benchmarks; writes bench/RESULTS.md. SCALE=full runs the scale section at the
## sizes of the goals (about 35 minutes more).
SCALE ?=
bench: install-extensions
	@BENCH_SCALE=$(SCALE) scripts/bench.sh

lint: bootstrap
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

clean:
	for c in .clusters/*/; do [ -d "$$c" ] && scripts/cluster.sh destroy "$$(basename $$c)"; done; true
	cargo clean
