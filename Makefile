# videoshare: the two commands.
#   make run    install what is missing, build, serve http://127.0.0.1:8080
#   make test   install what is missing, check formatting and lints, run every test
# Both install Debian's ffmpeg and nodejs + npm (and for tests chromium +
# chromium-driver, and postgresql for a throwaway test server) with apt-get
# when they are missing, then the pinned hls.js
# (package-lock.json) with `npm ci` when node_modules lacks it or is older.

CARGO ?= cargo
ARGS ?=

.PHONY: run test test-postgres bench deps-run deps-test

run: deps-run
	$(CARGO) run --release --locked -- serve $(ARGS)

test: deps-test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	# Store and farm tests also run on PostgreSQL: the script finds a server
	# or starts a throwaway one (docs/postgres-tests.md).
	url=$$(scripts/ensure-postgres.sh) && VIDEOSHARE_TEST_DATABASE=$$url $(CARGO) test --locked
	# The benchmark harness, tiny sizes: proves it runs (figures mean nothing).
	# Its farm and Carbon figures run on the test PostgreSQL too.
	url=$$(scripts/ensure-postgres.sh) && VIDEOSHARE_TEST_DATABASE=$$url \
		$(CARGO) test --locked --bench bench

# Every test again, each app on PostgreSQL instead of SQLite (about 7 min).
test-postgres: deps-test
	url=$$(scripts/ensure-postgres.sh) && VIDEOSHARE_TEST_DATABASE=$$url \
		VIDEOSHARE_TEST_BACKEND=postgres $(CARGO) test --locked

# Every benchmark at full size (about 25 minutes); see docs/benchmarks.md.
# The farm and Carbon figures need PostgreSQL: the same throwaway server.
bench: deps-test
	url=$$(scripts/ensure-postgres.sh) && VIDEOSHARE_TEST_DATABASE=$$url \
		$(CARGO) bench --locked --bench bench

# The file the binary embeds (build.rs checks it). npm gives extracted files
# an old fixed date, hence the touch: newer than the lock once installed.
HLS_JS := node_modules/hls.js/dist/hls.min.js

deps-run:
	@scripts/ensure-deps.sh ffmpeg nodejs npm
	@$(MAKE) --no-print-directory $(HLS_JS)

deps-test:
	@scripts/ensure-deps.sh ffmpeg nodejs npm chromium chromium-driver python3
	@$(MAKE) --no-print-directory $(HLS_JS)

$(HLS_JS): package-lock.json package.json
	npm ci --no-audit --no-fund
	@touch $@
