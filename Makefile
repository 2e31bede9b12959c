# haltfleet: the README's two commands are `make demo` and `make test`.
GO      ?= go
SHELL   := /bin/bash
BIN     := bin/haltfleet
LABDIR  ?= /var/lib/haltfleet-lab

.PHONY: all build deps vet test test-short demo e2e bench lab-down idle clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/haltfleet

deps:
	scripts/deps

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Every test, real sshd, namespaces and the VM lab included (root needed; in CI a missing
# prerequisite fails instead of skipping).
# The VM end-to-end package runs last and alone: TCG boots are CPU-bound.
test: vet
	$(GO) test -race -timeout 40m $$($(GO) list ./... | grep -v /e2e)
	$(GO) test -timeout 60m -v -run TestE2E ./e2e/

# Unit tests only (no root, no VMs).
test-short:
	$(GO) test -short ./...

# Builds the lab (Debian 12 VMs under qemu), runs `haltfleet up` on it and prints the probes.
demo: deps build
	$(BIN) lab up --dir $(LABDIR)
	$(BIN) up -i $(LABDIR)/hosts.yml --limit firewalls --yes

# The end-to-end proof for all four init systems.
e2e: deps
	HALTFLEET_E2E_INITS=systemd,sysvinit,openrc,runit,networkd $(GO) test -timeout 80m -run TestE2E -v ./e2e/

# Scale benchmark (root): fleets of 50/200/500 real hosts; prints the tables and writes
# /var/tmp/haltfleet-bench/results.json. BENCH_N=50,200 for a shorter run.
bench: deps build
	$(GO) run ./bench/cmd/haltfleet-bench -haltfleet $(BIN) -n $(or $(BENCH_N),50,200,500) -forks $(or $(BENCH_FORKS),50)

lab-down: build
	$(BIN) lab down --dir $(LABDIR)

# Rebuilds the idle init binaries embedded in the haltfleet binary.
idle:
	$(GO) generate ./tasks/idle/

clean:
	rm -rf bin
