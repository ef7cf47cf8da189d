package main

import (
	"context"
	"flag"
	"io"
	"strings"

	"github.com/billing-engine/billing/engine"
)

func cmdLoadgen(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	brokers := fs.String("brokers", envOr("BILLING_KAFKA_BROKERS", ""), "comma-separated brokers (default: BILLING_EMBEDDED_KAFKA)")
	cfg := engine.LoadgenConfig{Progress: stdout}
	fs.StringVar(&cfg.Topic, "topic", "transactions", "topic to produce to")
	fs.StringVar(&cfg.SchemasDir, "schemas", "schemas", "directory of .avsc schemas")
	fs.IntVar(&cfg.Count, "count", 0, "records to produce (0: no limit)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to produce (0: no limit)")
	fs.IntVar(&cfg.Rate, "rate", 0, "records per second (0: as fast as possible)")
	fs.IntVar(&cfg.Clients, "clients", 100, "distinct client ids")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.StringVar(&cfg.API, "api", "", "an engine's API base URL (e.g. http://127.0.0.1:8080): create the clients first, so their transactions can be emailed")
	cfg.APIToken = envOr("BILLING_API_TOKEN", "")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if cfg.Count == 0 && cfg.Duration == 0 {
		return usageError("set -count or -duration")
	}
	b := *brokers
	if b == "" || b == "embedded" {
		b = envOr("BILLING_EMBEDDED_KAFKA", "127.0.0.1:9092")
	}
	cfg.Brokers = strings.Split(b, ",")
	_, err := engine.Loadgen(ctx, cfg)
	return err
}
