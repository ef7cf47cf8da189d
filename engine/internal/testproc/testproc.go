// Package testproc is the Processor of the host's test plugin
// (../pluginhost/testdata/testplugin): a no-op that passes every record to one
// output, with faults to order, each set in its settings:
//
//	output:     the output records go to (default "out")
//	reject:     true fails the configuration
//	pid_file:   Configure writes the process id there
//	delay:      a duration to sleep in each Process call
//	hang_key:   the first batch holding a record with this key blocks forever
//	crash_key:  the first batch holding a record with this key crashes the
//	            process with a panic
//	fail_key:   a batch holding a record with this key fails with an error
//	marker_dir: where "the first" is remembered across restarts (required
//	            with hang_key and crash_key)
//	tag_field:  adds a header "tag" with this field of the decoded record
//	raw:        true says the Processor does not read Record.Data (it is
//	            an sdk.DataUser), so the plugin does not decode values
//	unavailable_for: a duration from Configure during which every Process
//	            call fails with an error wrapping sdk.ErrUnavailable
//
// The same Processor runs in-process in benchmarks, for comparison.
package testproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/billing-engine/billing/engine/sdk"
)

// Outputs are the outputs the test plugin declares.
var Outputs = []string{"out", "alt"}

// Proc is the test Processor. It is safe for concurrent use.
type Proc struct {
	output                     string
	delay                      time.Duration
	hangKey, crashKey, failKey string
	markerDir, tagField        string
	raw                        bool
	unavailableUntil           time.Time
}

// New builds a Proc from cfg.Settings.
func New(_ context.Context, cfg sdk.Config) (sdk.Processor, error) {
	s := cfg.Settings
	p := &Proc{output: "out"}
	str := func(k string) string { v, _ := s[k].(string); return v }
	if v := str("output"); v != "" {
		p.output = v
	}
	if r, _ := s["reject"].(bool); r {
		return nil, errors.New("reject: the test asked for a configuration error")
	}
	if d := str("delay"); d != "" {
		var err error
		if p.delay, err = time.ParseDuration(d); err != nil {
			return nil, fmt.Errorf("delay: %w", err)
		}
	}
	p.hangKey, p.crashKey, p.failKey, p.markerDir = str("hang_key"), str("crash_key"), str("fail_key"), str("marker_dir")
	p.tagField = str("tag_field")
	p.raw, _ = s["raw"].(bool)
	if p.raw && p.tagField != "" {
		return nil, errors.New("tag_field: needs Record.Data, which raw turns off")
	}
	if d := str("unavailable_for"); d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("unavailable_for: %w", err)
		}
		p.unavailableUntil = time.Now().Add(dur)
	}
	if (p.hangKey != "" || p.crashKey != "") && p.markerDir == "" {
		return nil, errors.New("marker_dir: required with hang_key or crash_key")
	}
	if f := str("pid_file"); f != "" {
		if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return nil, fmt.Errorf("pid_file: %w", err)
		}
	}
	cfg.Log().Info("test processor configured", "output", p.output)
	return p, nil
}

// Process passes every record to the output, after the faults.
func (p *Proc) Process(ctx context.Context, batch []sdk.Record) ([]sdk.Result, error) {
	if p.delay > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(p.delay):
		}
	}
	if time.Now().Before(p.unavailableUntil) {
		return nil, fmt.Errorf("test dependency: %w", sdk.Unavailable(errors.New("down as asked")))
	}
	out := make([]sdk.Result, len(batch))
	for i, r := range batch {
		switch k := string(r.Key); {
		case k == "":
		case k == p.failKey:
			return nil, fmt.Errorf("record %s: failing as asked", k)
		case k == p.hangKey && p.first("hang"):
			select {} // hang, deaf to ctx, until the host kills the process
		case k == p.crashKey && p.first("crash"):
			go panic("testproc: crashing as asked") // beyond the SDK's recover
			select {}
		}
		out[i] = sdk.Pass(r, p.output)
		if p.tagField != "" {
			out[i].Emits[0].Headers = append(slices.Clip(r.Headers), sdk.Header{Key: "tag", Value: fmt.Append(nil, r.Data[p.tagField])})
		}
	}
	return out, nil
}

// UsesData reports whether Process reads Record.Data: unless the
// settings say raw (and then tag_field is refused).
func (p *Proc) UsesData() bool { return !p.raw }

// first reports whether this is the first time the fault fires, across
// processes, remembered by a file in the marker directory.
func (p *Proc) first(fault string) bool {
	f, err := os.OpenFile(filepath.Join(p.markerDir, fault), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
