# The billing system: a plugin-driven stream engine on Kafka.
#   make run    build and run the billing pipelines on embedded defaults
#   make test   vet, format check, validate the pipelines, run every test (race detector on)
#   make test-faults  the fault tests (database cut, disk full, broker restart, repeated SIGKILL)
#   make fuzz   each fuzz target for FUZZTIME executions
#   make bench  benchmarks: the pipeline against plain sarama on the same broker

GO        ?= go
BIN       := bin
PLUGINS   := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
PIPELINE  ?= pipelines/billing.yaml
TESTFLAGS ?= -race -shuffle=on -timeout 20m

.PHONY: all build run test test-faults test-short vet fmt-check validate bench soak fuzz proto clean

all: build

build:
	$(GO) build -o $(BIN)/engine ./cmd/engine
	@for p in $(PLUGINS); do echo "$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p"; $(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; done
	$(GO) build -o $(BIN)/plugins/tagger ./examples/plugins/tagger

run: build
	@echo "dashboard: http://$${BILLING_HTTP_LISTEN:-127.0.0.1:8080}/  (metrics at /metrics, API description at /api/v1/openapi.json)"
	$(BIN)/engine run $(PIPELINE)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

validate: build
	@for f in pipelines/*.yaml; do $(BIN)/engine validate $$f || exit 1; done

# The fault tests (TestFault*: the database cut, the disk full, the broker
# restarted, the engine SIGKILLed again and again) run in their own binary
# with their own timeout: make test-faults.
test: vet fmt-check validate
	$(GO) test $(TESTFLAGS) -skip '^TestFault' ./...

test-faults: build
	$(GO) test $(TESTFLAGS) -run '^TestFault' ./engine/

test-short:
	$(GO) test -short ./...

# Benchmarks print ratios measured in one run on one embedded broker.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./engine/avro ./engine/expr
	$(GO) test -run '^$$' -bench BenchmarkPluginBatch -benchmem ./engine/internal/pluginhost
	$(GO) test -run '^$$' -bench 'BenchmarkPipeline|BenchmarkPluginPipeline|BenchmarkQueries|BenchmarkBilling' -benchtime 1x -timeout 30m ./engine/
	$(GO) test -run '^$$' -bench BenchmarkMailer -benchtime 5000x ./plugins/email/mailer
	$(GO) test -run '^$$' -bench BenchmarkCreateTransaction -benchtime 5000x ./engine/internal/httpapi
	# Every scenario in one table, printed and written to BENCHMARKS.md.
	BENCH_WRITE=1 $(GO) test -run '^$$' -bench BenchmarkScenarios -benchtime 1x -timeout 60m ./engine/

# Ten minutes of the whole billing flow at 1,000 transactions/s: RSS,
# goroutines, heap and open files sampled; fails on growth after warm-up.
soak: build
	$(GO) test -run '^$$' -bench BenchmarkSoak -benchtime 1x -timeout 30m ./engine/

# Runs each fuzz target for FUZZTIME, one after another (-fuzz takes one
# package at a time). A failing input is written under the package's
# testdata/fuzz/<target>/: commit it with the fix, so it stays a regression
# test that every `go test` runs. FUZZTIME is a count of executions, not a
# duration: with a duration, Go's fuzzing coordinator can fail a target with
# a bare "context deadline exceeded" when the time runs out while a worker
# is busy (golang/go#75804; it failed CI once on a loaded 2-core VM, with no
# failing input).
FUZZTIME ?= 20000x
FUZZ_TARGETS := \
	FuzzDecode:./engine/avro \
	FuzzDirectDecode:./engine/avro \
	FuzzAppendRow:./engine/internal/state \
	FuzzReader:./engine/sdk/pluginpb \
	FuzzCompile:./engine/expr \
	FuzzLoad:./engine/internal/pipeline \
	FuzzParseInterval:./engine/internal/billing \
	FuzzCRUDBodies:./engine/internal/httpapi \
	FuzzBillingCycleBody:./engine/internal/httpapi \
	FuzzDecodeCursor:./engine/store \
	FuzzAppendData:./plugins/email/mailer

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# Regenerates the plugin protocol's Go code (committed, so building needs no
# protoc). Needs protoc (Debian protobuf-compiler), protoc-gen-go v1.36.12
# and protoc-gen-go-grpc v1.6.2 on PATH.
proto:
	cd engine/sdk/pluginpb && protoc -I . --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

clean:
	rm -rf $(BIN)
