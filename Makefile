# replink: two commands do everything on a fresh machine.
#   make demo   the state machine as a picture, and a fault scenario running
#   make test   vet, and every test with the race detector
GO ?= go

.PHONY: demo test vet generate bench
demo:
	$(GO) run ./cmd/fsmviz
	$(GO) run ./cmd/fsmviz -format mermaid
	$(GO) run ./cmd/replink simulate testdata/conformance/case5-provider-hang.txt

test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

generate:
	$(GO) generate ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./fsm/
