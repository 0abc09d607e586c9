# Candor — the two commands: `make run` and `make test`. `make bench` for the benchmark.
SHELL := /bin/bash
DATA ?= ./var
PORT ?= 8080
HOST ?= 127.0.0.1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

RUN_PACKAGES := libsqlite3-dev libsodium-dev libmaxminddb-dev libpq-dev libpcre2-dev libqrencode-dev libcurl4-openssl-dev libcairo2-dev fonts-dejavu-core sqlite3 pkg-config tzdata uap-core ruby-referer-parser iso-codes zlib1g-dev libbrotli-dev python3-pip esbuild
# The crawler pattern list (MIT, https://github.com/monperrus/crawler-user-agents), from PyPI,
# installed where candor serve reads it by default (--crawler-list to change).
CRAWLERS_VERSION := 1.67.0
CRAWLERS_DIR := /usr/local/share/candor/crawler-user-agents
# Country shapes for the dashboard's map (pygal's world map, LGPL-3.0+), from PyPI, read by
# candor serve at start-up (--world-map to change).
MAPS_VERSION := 1.0.2
MAPS_DIR := /usr/local/share/candor/pygal-maps-world
TEST_PACKAGES := $(RUN_PACKAGES) postgresql libmaxmind-db-writer-perl mmdb-bin chromium chromium-driver python3 python3-pip nginx zbar-tools poppler-utils
BENCH_PACKAGES := $(RUN_PACKAGES) nginx wrk curl postgresql

.PHONY: run test bench bench-classify bench-dashboard bench-pg build release assets deps-run deps-test deps-bench fixtures clean

# Installs the Debian packages in $(1) that are missing (apt-get update only when needed).
define ensure_packages
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@command -v swift >/dev/null || { echo "swift (6.x) is required on PATH: https://swift.org/install"; exit 1; }
endef

deps-run:
	$(call ensure_packages,$(RUN_PACKAGES))
	@[ -d $(CRAWLERS_DIR)/crawler_user_agents-$(CRAWLERS_VERSION).dist-info ] || { \
	  echo "installing: crawler-user-agents $(CRAWLERS_VERSION) (PyPI) into $(CRAWLERS_DIR)"; \
	  $(SUDO) rm -rf $(CRAWLERS_DIR) && \
	  $(SUDO) python3 -m pip install --quiet --no-deps --disable-pip-version-check --root-user-action=ignore --target $(CRAWLERS_DIR) crawler-user-agents==$(CRAWLERS_VERSION); }
	@# PyPI has only the source distribution, whose install leaves the map out: its file is taken from it.
	@[ -f $(MAPS_DIR)/$(MAPS_VERSION)/pygal_maps_world/worldmap.svg ] || { \
	  echo "installing: pygal_maps_world $(MAPS_VERSION) (PyPI) into $(MAPS_DIR)"; \
	  tmp=$$(mktemp -d) && python3 -m pip download --quiet --no-deps --no-binary :all: --disable-pip-version-check \
	    --dest $$tmp pygal_maps_world==$(MAPS_VERSION) && \
	  $(SUDO) rm -rf $(MAPS_DIR) && $(SUDO) mkdir -p $(MAPS_DIR)/$(MAPS_VERSION) && \
	  $(SUDO) tar -xzf $$tmp/pygal_maps_world-$(MAPS_VERSION).tar.gz -C $(MAPS_DIR)/$(MAPS_VERSION) --strip-components=1 \
	    pygal_maps_world-$(MAPS_VERSION)/pygal_maps_world/worldmap.svg pygal_maps_world-$(MAPS_VERSION)/PKG-INFO && \
	  rm -rf $$tmp; }

deps-test: deps-run
	$(call ensure_packages,$(TEST_PACKAGES))
	@python3 -c "import selenium, pytest, pyotp, aiosmtpd, openapi_core, yaml" 2>/dev/null || python3 -m pip install --quiet selenium pytest pyotp aiosmtpd openapi-core==0.23.1 pyyaml \
	  || python3 -m pip install --quiet --break-system-packages selenium pytest pyotp aiosmtpd openapi-core==0.23.1 pyyaml

deps-bench: deps-run
	$(call ensure_packages,$(BENCH_PACKAGES))

# The client and dashboard assets, minified by esbuild (Debian) into Public/build/, which
# candor serve reads: pixel.js and its pageview-only variant pixel-lite.js from one source.
ESBUILD := esbuild --minify --legal-comments=none --log-level=warning --target=es2020
assets: deps-run
	@mkdir -p Public/build
	@$(ESBUILD) Public/pixel.js --bundle --format=iife --define:LITE=false --outfile=Public/build/pixel.js
	@$(ESBUILD) Public/pixel.js --bundle --format=iife --define:LITE=true --outfile=Public/build/pixel-lite.js
	@for f in consent.js consent.css admin.js admin.css demo.js demo.css; do $(ESBUILD) Public/$$f --outfile=Public/build/$$f || exit 1; done

release: deps-run assets
	swift build -c release

build: deps-run assets
	swift build

run: release
	@mkdir -p $(DATA)
	@.build/release/candor init --data $(DATA)
	@echo "Serving on http://$(HOST):$(PORT)  (data in $(DATA)/candor.sqlite, Ctrl-C to stop)"
	@echo "Dashboard: http://$(HOST):$(PORT)/  (sign in with the admin login above)  Demo page: http://$(HOST):$(PORT)/demo"
	.build/release/candor serve --data $(DATA) --host $(HOST) --port $(PORT)

# Swift Testing suites, then the headless-Chromium tests of pixel.js and the banner. The storage
# suites run against SQLite and against a throwaway PostgreSQL server started here (initdb in a
# temporary directory, a free loopback port), stopped and removed when the tests end.
test: deps-test assets
	swift build --build-tests
	@pg=$$(mktemp -d /tmp/candor-pg.XXXXXX); \
	trap 'scripts/pg-test-server stop '"$$pg"'; rm -rf '"$$pg" EXIT; trap 'exit 130' INT TERM; \
	url=$$(scripts/pg-test-server start $$pg) || exit 1; \
	echo "PostgreSQL for the tests: $$url"; \
	CANDOR_TEST_DATABASE_URL=$$url swift test
	python3 -m pytest -q -p no:cacheprovider Tests/browser -s

# Collector vs nginx, then the privacy office on a 10M-event database (BENCH_EVENTS to change),
# then the classifier; with BENCH_BASELINE=<git ref> (or BENCH_BASELINE_BIN), ingestion paired
# against that build first.
bench: deps-bench release
	@if [ -n "$(BENCH_BASELINE)$(BENCH_BASELINE_BIN)" ]; then ./bench/paired.sh; fi
	./bench/run.sh
	./bench/privacy.sh
	@$(MAKE) --no-print-directory bench-classify

# Classifier figures on public samples kept outside the repository: Matomo device-detector's
# labelled fixtures (PyPI device-detector 6.5.1, LGPL-3.0), fake-useragent's traffic-weighted
# real-world user agents (PyPI fake-useragent 2.2.0, Apache-2.0), both downloaded to /tmp, and,
# when REFERRER_TESTS names it, Snowplow referer-parser's resources/referer-tests.json.
bench-classify: deps-bench release
	@d=$$(mktemp -d /tmp/candor-dd.XXXXXX); \
	python3 -m pip download --quiet --no-deps --disable-pip-version-check -d $$d device-detector==6.5.1 fake-useragent==2.2.0 \
	  && python3 -c "import zipfile, glob; [zipfile.ZipFile(w).extractall('$$d/x') for w in glob.glob('$$d/*.whl')]" \
	  && .build/release/candor bench classify --matomo-fixtures $$d/x/device_detector/tests/fixtures/upstream \
	     --real-world $$d/x/fake_useragent/data/browsers.jsonl \
	     $(if $(REFERRER_TESTS),--referrer-tests $(REFERRER_TESTS)); rc=$$?; rm -rf $$d; exit $$rc

# 10M events over 30 days, rollups, the site view's query timings (BENCH_EVENTS to change).
bench-dashboard: deps-bench release
	./bench/dashboard.sh

# The write stage on SQLite and on PostgreSQL (a throwaway server), the same rows, in one run.
bench-pg: deps-bench release
	./bench/postgres.sh

# Regenerates the GeoIP test fixtures (committed; needs libmaxmind-db-writer-perl).
fixtures: deps-test
	perl scripts/make-geo-fixtures.pl Tests/CandorTests/Fixtures

clean:
	rm -rf .build
