# replink: two commands do everything on a fresh machine.
#   make demo   install slapd if needed, draw the state machine, then run the
#               six cases of the design mail against a real slapd with real
#               faults and print how long each took to detect
#   make test   install slapd if needed, vet, and every test with the race
#               detector, the real-slapd integration tests included
GO ?= go

.PHONY: demo test vet deps generate bench fuzz
demo: deps
	$(GO) run ./cmd/fsmviz -format mermaid
	@if command -v slapd >/dev/null || [ -x /usr/sbin/slapd ]; then \
		$(GO) run ./cmd/replink tour; \
	else \
		echo "slapd missing: running a scenario against the simulated provider instead"; \
		$(GO) run ./cmd/replink simulate testdata/conformance/case5-provider-hang.txt; \
	fi

test: deps vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

deps:
	@bash scripts/install-deps.sh

generate:
	$(GO) generate ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./fsm/ ./ldapadapter/

# The seeds run in make test; this searches further (FUZZTIME per target).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzFrame$$' -fuzztime $(FUZZTIME) ./ldapadapter/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./conformance/
