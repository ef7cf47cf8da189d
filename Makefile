# The billing system: a plugin-driven stream engine on Kafka.
#   make run    build and run the billing pipelines on embedded defaults
#   make test   vet, format check, validate the pipelines, run every test (race detector on)
#   make bench  benchmarks: the pipeline against plain sarama on the same broker

GO        ?= go
BIN       := bin
PLUGINS   := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
PIPELINE  ?= pipelines/billing.yaml
TESTFLAGS ?= -race -shuffle=on -timeout 20m

.PHONY: all build run test test-short vet fmt-check validate bench clean

all: build

build:
	$(GO) build -o $(BIN)/engine ./cmd/engine
	@for p in $(PLUGINS); do echo "$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p"; $(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; done

run: build
	$(BIN)/engine run $(PIPELINE)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

validate: build
	@for f in pipelines/*.yaml; do $(BIN)/engine validate $$f || exit 1; done

test: vet fmt-check validate
	$(GO) test $(TESTFLAGS) ./...

test-short:
	$(GO) test -short ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x ./engine/avro ./engine/expr
	$(GO) test -run '^$$' -bench BenchmarkPipeline -benchtime 1x -timeout 30m ./engine/

clean:
	rm -rf $(BIN)
