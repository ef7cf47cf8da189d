// Command tagger is an example stage plugin. It tags every transaction
// with a header saying its amount band, and sends those at or above a
// threshold to the output "high"; the others go on to the next stage.
//
// Declare it in a pipeline file and use it in a stage:
//
//	plugins:
//	  tagger:
//	    command: ../bin/plugins/tagger     # relative to the pipeline file
//	    config: {threshold: 100000}        # minor units
//	pipelines:
//	  - name: tag
//	    source: {topic: transactions, schema: Transaction}
//	    stages:
//	      - plugin: tagger
//	        outputs: {high: transactions.high}
//	    branches:
//	      - {name: normal, default: true, to: transactions.normal}
//
// Settings: threshold (required, a positive integer in minor units) and
// header (the header's name, default "amount-band").
package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/billing-engine/billing/engine/sdk"
)

// Tagger is the processor. It holds no state, so it is safe for
// concurrent use as sdk.Processor requires.
type Tagger struct {
	threshold int64
	header    string
}

// New builds a Tagger from the stage's settings, reporting every bad
// setting at once. It is the plugin's sdk.Factory.
func New(_ context.Context, cfg sdk.Config) (sdk.Processor, error) {
	t := &Tagger{header: "amount-band"}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(cfg.Settings)) {
		v := cfg.Settings[k]
		switch k {
		case "threshold":
			n, ok := v.(int) // YAML and JSON integers arrive as int
			if !ok || n <= 0 {
				errs = append(errs, fmt.Errorf("threshold: want a positive integer (minor units), got %v", v))
				continue
			}
			t.threshold = int64(n)
		case "header":
			s, ok := v.(string)
			if !ok || s == "" {
				errs = append(errs, fmt.Errorf("header: want a header name, got %v", v))
				continue
			}
			t.header = s
		default:
			errs = append(errs, fmt.Errorf("%s: unknown setting (want threshold, header)", k))
		}
	}
	if _, ok := cfg.Settings["threshold"]; !ok {
		errs = append(errs, errors.New("threshold: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Log().Info("tagger configured", "threshold", t.threshold, "header", t.header)
	return t, nil
}

// Process tags each record. Record.Data is the decoded transaction; a
// record without an amount goes to the dead-letter queue.
func (t *Tagger) Process(_ context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	out := make([]sdk.Result, len(batch))
	for i, r := range batch {
		amount, ok := r.Data["amount_minor"].(int64)
		if !ok {
			out[i] = sdk.Result{DLQ: "tagger: no amount_minor"}
			continue
		}
		band, output := "normal", "next"
		if amount >= t.threshold {
			band, output = "high", "high"
		}
		headers := append(slices.Clip(r.Headers), sdk.Header{Key: t.header, Value: []byte(band)})
		out[i] = sdk.Result{Emits: []sdk.Emit{{Output: output, Value: r.Value, Headers: headers, Data: r.Data}}}
	}
	return out, nil
}

func main() {
	sdk.Serve(New, sdk.WithInfo(sdk.Info{Name: "tagger", Version: "1.0.0", Outputs: []string{"high"}}))
}
