// Command engine runs YAML stream pipelines on Kafka: the real-time billing
// system and any other set of pipelines.
//
//	engine run FILE        run the pipelines and the HTTP API
//	engine validate FILE   check a pipeline file; exit 1 on any error
//	engine graph FILE      print the topology as Mermaid text
//	engine broker          run the embedded Kafka broker on its own
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"github.com/billing-engine/billing/engine"
	"github.com/billing-engine/billing/plugins/branch/router"
)

const usage = `usage: engine <command> [flags]

commands:
  run FILE        run the pipelines in FILE and the HTTP API (flags: -cpuprofile, -memprofile, -trace)
  validate FILE   check FILE, its schemas and plugins; exit 1 on any error
  graph FILE      print FILE's topology as Mermaid text
  broker          run the embedded Kafka broker alone (flags: -listen, -data)
  loadgen         produce test transactions (see engine loadgen -h)
`

// gcPercent is the garbage collector's target the engine runs with unless
// GOGC says otherwise: its live heap is small next to Pebble's own cache,
// and every batch allocates its decoded records, so collecting at 100%
// spends a tenth of the CPU on garbage collection.
const gcPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops gracefully: the batches in hand are
		// finished and committed. That can take long or never end (a broker
		// gone for good), so a second signal ends the process at once, as
		// with no handler: what was not committed is read again after a
		// restart, and what the batches left open the broker aborts.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	log := newLogger(stderr)
	opts := []engine.Option{
		engine.WithLogger(log),
		engine.WithProcessor(router.Name, router.New),
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], opts, log)
	case "validate":
		return cmdValidate(args[1:], opts, stdout, stderr)
	case "graph":
		err = cmdGraph(args[1:], opts, stdout)
	case "broker":
		err = cmdBroker(ctx, args[1:], log)
	case "loadgen":
		err = cmdLoadgen(ctx, args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "engine: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		var usageErr usageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(stderr, "engine %s: %s\n", args[0], usageErr)
			return 2
		}
		fmt.Fprintf(stderr, "engine %s: %s\n", args[0], err)
		return 1
	}
	return 0
}

// usageError is a command-line mistake: exit status 2.
type usageError string

func (e usageError) Error() string { return string(e) }

func fileArg(args []string) (string, error) {
	if len(args) != 1 {
		return "", usageError("want exactly one pipeline file")
	}
	return args[0], nil
}

func cmdRun(ctx context.Context, args []string, opts []engine.Option, log *slog.Logger) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile (allocations of the whole run) to this file when the run ends")
	traceFile := fs.String("trace", "", "write an execution trace of the whole run to this file (go tool trace reads it)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	path, err := fileArg(fs.Args())
	if err != nil {
		return err
	}
	e, err := engine.New(path, opts...)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer trace.Stop()
	}
	go func() {
		<-ctx.Done()
		log.Info("stopping: finishing and committing the batches in hand; a second signal stops at once")
	}()
	var memFile *os.File
	if *memProfile != "" {
		// Created now, so that a bad path fails before the run, not after.
		if memFile, err = os.Create(*memProfile); err != nil {
			return fmt.Errorf("memory profile: %w", err)
		}
	}
	err = e.Run(ctx)
	if memFile != nil {
		if perr := writeHeapProfile(memFile); perr != nil {
			return errors.Join(err, perr)
		}
	}
	return err
}

// writeHeapProfile writes the heap profile to f and closes it: its
// alloc_space and alloc_objects sample every allocation since the process
// started (up to a garbage collection, which it runs first).
func writeHeapProfile(f *os.File) error {
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("memory profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	return nil
}

func cmdValidate(args []string, opts []engine.Option, stdout, stderr io.Writer) int {
	path, err := fileArg(args)
	if err != nil {
		fmt.Fprintf(stderr, "engine validate: %s\n", err)
		return 2
	}
	if err := engine.Validate(path, opts...); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func cmdGraph(args []string, opts []engine.Option, stdout io.Writer) error {
	path, err := fileArg(args)
	if err != nil {
		return err
	}
	g, err := engine.Graph(path, opts...)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, g)
	return err
}

func cmdBroker(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	listen := fs.String("listen", envOr("BILLING_EMBEDDED_KAFKA", "127.0.0.1:9092"), "address to listen on")
	data := fs.String("data", envOr("BILLING_DATA_DIR", "./data")+"/kafka", "directory for the broker's log")
	partitions := fs.Int("partitions", 8, "partitions of auto-created topics")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	return engine.RunBroker(ctx, *listen, *data, *partitions, log)
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// newLogger logs text on a terminal and JSON otherwise, at the level in
// BILLING_LOG_LEVEL (debug, info, warn, error; default info).
func newLogger(w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(envOr("BILLING_LOG_LEVEL", "info"))); err != nil {
		level = slog.LevelInfo
	}
	o := &slog.HandlerOptions{Level: level}
	if f, ok := w.(*os.File); ok && isTerminal(f) || os.Getenv("BILLING_LOG_FORMAT") == "text" {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
