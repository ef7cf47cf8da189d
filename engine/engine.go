package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/billing-engine/billing/engine/avro"
	"github.com/billing-engine/billing/engine/internal/billing"
	"github.com/billing-engine/billing/engine/internal/embedded"
	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/internal/httpfront"
	"github.com/billing-engine/billing/engine/internal/metrics"
	"github.com/billing-engine/billing/engine/internal/pipeline"
	"github.com/billing-engine/billing/engine/internal/pollnet"
	"github.com/billing-engine/billing/engine/internal/query"
	"github.com/billing-engine/billing/engine/internal/state"
	"github.com/billing-engine/billing/engine/internal/stream"
	"github.com/billing-engine/billing/engine/store"
)

// Engine runs the pipelines of one pipeline file. Create it with New.
type Engine struct {
	file    *pipeline.File
	opts    options
	log     *slog.Logger
	reg     *avro.Registry
	stats   *Stats
	metrics *metrics.Metrics

	state   *state.Store    // nil without tables
	tracker *stream.Tracker // partitions owned and restoring
	router  *query.Router   // nil without tables

	instance string // the data directory's instance id (see claimDataDir)

	db     *store.DB       // the client and transaction database; nil until Run opens it
	cycles *billing.Cycles // the billing cycle runner; nil until the HTTP API is up

	ready    chan struct{}
	stopping chan struct{} // closed when the HTTP server shuts down, to end event streams
}

// New loads and validates the pipeline file at path and its schemas. The
// error lists every problem found, each as file:line:column: message.
func New(path string, opts ...Option) (*Engine, error) {
	o := newOptions(opts)
	f, err := load(path, o)
	if err != nil {
		return nil, err
	}
	reg, err := avro.LoadDir(f.SchemasDir)
	if err != nil {
		return nil, fmt.Errorf("engine: schemas: %w", err)
	}
	return &Engine{file: f, opts: o, log: o.log, reg: reg, stats: newStats(), metrics: metrics.New(), tracker: stream.NewTracker(), ready: make(chan struct{}), stopping: make(chan struct{})}, nil
}

func load(path string, o options) (*pipeline.File, error) {
	f, err := pipeline.Load(path, pipeline.WithLookupEnv(o.lookupEnv))
	if err != nil {
		return nil, err
	}
	if err := pipeline.Validate(f, pipeline.ValidateOptions{Builtin: o.builtin()}); err != nil {
		return nil, err
	}
	if err := checkPlugins(context.Background(), f, o); err != nil {
		return nil, err
	}
	return f, nil
}

// Validate checks the pipeline file at path: its syntax, keys, topics,
// expressions, schema fields and plugin binaries. The error lists every
// problem, each as file:line:column: message.
func Validate(path string, opts ...Option) error {
	_, err := load(path, newOptions(opts))
	return err
}

// Graph returns the topology of the pipeline file at path as Mermaid text.
func Graph(path string, opts ...Option) (string, error) {
	f, err := load(path, newOptions(opts))
	if err != nil {
		return "", err
	}
	return pipeline.Graph(f), nil
}

// Stats returns the engine's running counts.
func (e *Engine) Stats() *Stats { return e.stats }

// Ready is closed once every pipeline is running.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Run starts the embedded broker when configured, creates missing topics,
// starts the HTTP server and runs every pipeline until ctx ends. Then it
// finishes and commits the batches in hand, stops in reverse start order
// and returns nil; it returns an error when something could not start.
func (e *Engine) Run(ctx context.Context) error {
	f := e.file
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				e.log.Warn("shutdown", "err", err)
			}
		}
	}()
	id, release, err := claimDataDir(f.DataDir)
	if err != nil {
		return err
	}
	closers = append(closers, release)
	e.instance = id
	brokers := f.Kafka.Brokers
	if isEmbedded(brokers) {
		b, err := e.startBroker()
		if err != nil {
			return err
		}
		closers = append(closers, func() error { b.Close(); return nil })
		brokers = []string{b.Addr()}
	} else {
		e.log.Info("kafka", "brokers", strings.Join(brokers, ","))
	}
	cfg, err := stream.SaramaConfig(f.Kafka)
	if err != nil {
		return err
	}
	if e.hasTables() {
		// Before any topic is created: a store the file can no longer
		// use is refused with nothing changed in the cluster.
		if e.state, err = e.openState(); err != nil {
			return err
		}
		closers = append(closers, e.state.Close)
	}
	if f.Kafka.CreateTopics {
		if err := stream.EnsureTopics(ctx, brokers, cfg, e.topicSpecs(), e.log); err != nil {
			return err
		}
	}
	if e.hasTables() {
		qt, err := e.queryTables(brokers, cfg)
		if err != nil {
			return err
		}
		admin := &lazyAdmin{brokers: brokers, cfg: cfg}
		closers = append(closers, admin.Close)
		e.router = query.NewRouter(e.state, e.tracker, f.HTTP.Advertise, admin.Get, qt)
	}
	if e.db, err = e.openStore(ctx); err != nil {
		return err
	}
	closers = append(closers, e.db.Close)
	e.registerStateMetrics()
	stopRelay, err := e.startRelay(ctx, brokers, cfg)
	if err != nil {
		return err
	}
	closers = append(closers, stopRelay)
	runners, closeChains, err := e.buildRunners(ctx, brokers, cfg)
	if err != nil {
		return err
	}
	closers = append(closers, closeChains)
	srv, err := e.startHTTP()
	if err != nil {
		return err
	}
	closers = append(closers, e.waitCycles) // after the server stops, before the database closes
	closers = append(closers, func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	e.log.Info("data directory", "dir", f.DataDir)
	return e.runAll(ctx, runners)
}

func (e *Engine) runAll(ctx context.Context, runners []*stream.Runner) error {
	var wg sync.WaitGroup
	errs := make([]error, len(runners))
	for i, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Run(ctx)
		}()
	}
	close(e.ready)
	go e.stats.logEvery(ctx, e.log, 10*time.Second)
	wg.Wait()
	return errors.Join(errs...)
}

func isEmbedded(brokers []string) bool {
	return len(brokers) == 1 && brokers[0] == "embedded"
}

func (e *Engine) startBroker() (*embedded.Broker, error) {
	dir := filepath.Join(e.file.DataDir, "kafka")
	b, err := embedded.Start(e.file.Kafka.EmbeddedListen, dir,
		embedded.Partitions(int(e.file.Kafka.Partitions)), embedded.Logger(e.log))
	if err != nil {
		return nil, err
	}
	e.log.Info("embedded Kafka broker started", "listen", b.Addr(), "data", dir)
	return b, nil
}

// queryPrefixes are the paths of the interactive queries, which the HTTP
// front answers on the connection's own goroutine (see package httpfront).
var queryPrefixes = []string{"/api/v1/transactions/", "/api/v1/tables/"}

func (e *Engine) startHTTP() (*httpfront.Server, error) {
	ln, err := pollnet.Listen(e.file.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("engine: http listen: %w", err)
	}
	std := &http.Server{
		Handler:           e.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	std.RegisterOnShutdown(func() { close(e.stopping) })
	srv := &httpfront.Server{Std: std, Prefixes: queryPrefixes, Inline: httpapi.IsLookup, Log: e.log}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("http server", "err", err)
		}
	}()
	url := "http://" + ln.Addr().String()
	e.log.Info("HTTP API listening", "url", url, "advertise", e.file.HTTP.Advertise)
	e.log.Info("dashboard: open "+url+"/ in a browser", "dashboard", url+"/", "metrics", url+"/metrics", "openapi", url+"/api/v1/openapi.json")
	return srv, nil
}

// lazyAdmin opens one cluster admin client on first use.
type lazyAdmin struct {
	brokers []string
	cfg     *sarama.Config
	mu      sync.Mutex
	admin   sarama.ClusterAdmin
}

// Get returns the admin client, connecting on first use.
func (l *lazyAdmin) Get() (sarama.ClusterAdmin, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.admin != nil {
		return l.admin, nil
	}
	a, err := sarama.NewClusterAdmin(l.brokers, l.cfg)
	if err != nil {
		return nil, fmt.Errorf("engine: admin: %w", err)
	}
	l.admin = a
	return a, nil
}

// Close closes the admin client if it was opened.
func (l *lazyAdmin) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.admin == nil {
		return nil
	}
	return l.admin.Close()
}
