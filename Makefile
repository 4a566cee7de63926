# replink: two commands do everything on a fresh machine.
#   make demo   install slapd if needed, then start a local slapd seeded with
#               a few thousand entries and run the replink daemon mirroring
#               it into a bbolt file, with its status page on localhost
#   make test   install slapd if needed, vet, and every test with the race
#               detector, the real-slapd and built-binary tests included
GO ?= go

.PHONY: demo tour test vet deps test-deps generate build bench gobench fuzz soak soak-model
demo: deps build
	$(GO) run ./cmd/fsmviz -format mermaid
	$(GO) run ./cmd/replink-tour demo -replink bin/replink

# The six cases of the design mail against a real slapd, with real faults;
# make tour PROVIDER=389ds runs them against 389 Directory Server instead,
# PROVIDER=samba against a Samba AD DC over DirSync (root: the DC runs in a
# network namespace).
PROVIDER ?= slapd
tour: deps
	@if [ "$(PROVIDER)" = 389ds ] || [ "$(PROVIDER)" = samba ]; then \
		bash scripts/install-deps.sh test && $(GO) run ./cmd/replink-tour tour -provider $(PROVIDER); \
	elif command -v slapd >/dev/null || [ -x /usr/sbin/slapd ]; then \
		$(GO) run ./cmd/replink-tour tour; \
	else \
		echo "slapd missing: running a scenario against the simulated provider instead"; \
		$(GO) run ./cmd/replink-tour simulate testdata/conformance/case5-provider-hang.txt; \
	fi

build:
	$(GO) build -o bin/replink ./cmd/replink

test: test-deps vet
	$(GO) test -race -count=1 -timeout 30m ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh test

generate:
	$(GO) generate ./...

# make soak: a seeded random schedule of real faults under a writer, then
# both consumers must equal the provider (20 minutes; DURATION=2m SEED=N).
# It starts with the model check of the data path (MODEL_DURATION).
DURATION ?= 20m
SEED ?=
soak: soak-model deps
	REPLINK_SOAK=$(DURATION) REPLINK_SOAK_SEED=$(SEED) $(GO) test -race -count=1 -timeout 0 -run '^TestSoak$$' -v ./cmd/replink/

# make soak-model: seeded provider histories against the real link, store
# and feed, with crashes, for MODEL_DURATION (default 2m);
# MODEL_FEATURES=all also runs what reaches the defects still open.
MODEL_DURATION ?= 2m
MODEL_FEATURES ?=
soak-model:
	REPLINK_MODEL_DURATION=$(MODEL_DURATION) REPLINK_MODEL_FEATURES=$(MODEL_FEATURES) REPLINK_MODEL_STEPS=40 $(GO) test -race -count=1 -timeout 0 -run '^TestModel$$' -v ./internal/modelcheck/

# make bench writes docs/benchmarks.md from one run (under 10 minutes on 2
# cores); QUICK=1 is a short run (under a minute). The Go benchmarks of the
# hot path are make gobench.
QUICK ?=
bench:
	@bash scripts/install-bench-deps.sh
	$(GO) run ./bench $(if $(QUICK),-quick) -o docs/benchmarks.md

gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./fsm/ ./ldapadapter/ ./store/

# The seeds run in make test; this searches further (FUZZTIME per target).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzFrame$$' -fuzztime $(FUZZTIME) ./ldapadapter/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./ldapadapter/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./conformance/
