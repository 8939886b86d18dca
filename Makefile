# videoshare: the two commands.
#   make run    install what is missing, build, serve http://127.0.0.1:8080
#   make test   install what is missing, check formatting and lints, run every test
# Both install Debian's ffmpeg (and for tests chromium + chromium-driver) with
# apt-get when they are missing.

CARGO ?= cargo
ARGS ?=

.PHONY: run test bench deps-run deps-test

run: deps-run
	$(CARGO) run --release --locked -- serve $(ARGS)

test: deps-test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) test --locked
	# The benchmark harness, tiny sizes: proves it runs (figures mean nothing).
	$(CARGO) test --locked --bench bench

# Every benchmark at full size (about 15 minutes); see docs/benchmarks.md.
bench: deps-run
	$(CARGO) bench --locked --bench bench

deps-run:
	@scripts/ensure-deps.sh ffmpeg

deps-test:
	@scripts/ensure-deps.sh ffmpeg chromium chromium-driver python3
