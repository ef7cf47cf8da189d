package pluginhost

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// hclogger is an hclog.Logger that writes to an slog.Logger: go-plugin
// logs its own work and each line of the plugin's stderr through it (JSON
// lines from the SDK's logger at their own level). Names, implied
// arguments and levels are kept by slog, not here.
type hclogger struct {
	log  *slog.Logger
	name string
}

// newHCLogger returns an hclog.Logger writing to l.
func newHCLogger(l *slog.Logger) hclog.Logger { return &hclogger{log: l} }

// slogLevel maps an hclog level to slog's; trace is below debug.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Log implements hclog.Logger.
func (h *hclogger) Log(level hclog.Level, msg string, args ...any) {
	lvl := slogLevel(level)
	ctx := context.Background()
	if !h.log.Enabled(ctx, lvl) {
		return
	}
	h.log.Log(ctx, lvl, msg, cleanArgs(args)...)
}

// cleanArgs drops the timestamp go-plugin adds to forwarded plugin lines
// (the engine's log has its own) and renames go-plugin's "plugin" (the
// binary's path) to "path", so it does not shadow plugin=<name>.
func cleanArgs(args []any) []any {
	out := args[:0:0]
	for i := 0; i+1 < len(args); i += 2 {
		k, ok := args[i].(string)
		switch {
		case ok && k == "timestamp":
			continue
		case ok && k == "plugin":
			out = append(out, "path", args[i+1])
		default:
			out = append(out, args[i], args[i+1])
		}
	}
	if len(args)%2 == 1 {
		out = append(out, args[len(args)-1])
	}
	return out
}

func (h *hclogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogger) enabled(l hclog.Level) bool {
	return h.log.Enabled(context.Background(), slogLevel(l))
}

func (h *hclogger) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hclogger) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hclogger) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hclogger) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hclogger) IsError() bool { return h.enabled(hclog.Error) }

// ImpliedArgs returns nil: With keeps its arguments in the slog logger.
func (h *hclogger) ImpliedArgs() []any { return nil }

// With returns a logger that adds args to every record.
func (h *hclogger) With(args ...any) hclog.Logger {
	return &hclogger{log: h.log.With(cleanArgs(args)...), name: h.name}
}

// Name returns the name set by Named.
func (h *hclogger) Name() string { return h.name }

// Named returns a logger with the name recorded but not logged: the
// engine's records already carry plugin=<name>.
func (h *hclogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return &hclogger{log: h.log, name: name}
}

// ResetNamed returns a logger named name.
func (h *hclogger) ResetNamed(name string) hclog.Logger { return &hclogger{log: h.log, name: name} }

// SetLevel does nothing: the slog handler decides.
func (h *hclogger) SetLevel(hclog.Level) {}

// GetLevel returns the lowest level the slog handler takes, so go-plugin
// skips parsing plugin lines that would be dropped.
func (h *hclogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger returns a *log.Logger writing to h at info.
func (h *hclogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer that logs each line at info.
func (h *hclogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return newLineWriter(h.log, slog.LevelInfo, "")
}

// lineWriter logs each complete line written to it. It is safe for
// concurrent use.
type lineWriter struct {
	log    *slog.Logger
	level  slog.Level
	stream string

	mu  sync.Mutex
	buf bytes.Buffer
}

// newLineWriter returns a writer that logs each line at level, with
// stream=<stream> when stream is not empty.
func newLineWriter(l *slog.Logger, level slog.Level, stream string) *lineWriter {
	if stream != "" {
		l = l.With("stream", stream)
	}
	return &lineWriter{log: l, level: level, stream: stream}
}

// Write implements io.Writer.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(w.buf.Next(i+1), "\r\n"))
		if line != "" {
			w.log.Log(context.Background(), w.level, line)
		}
	}
	if w.buf.Len() > bufio.MaxScanTokenSize { // a runaway line without newline
		w.log.Log(context.Background(), w.level, w.buf.String())
		w.buf.Reset()
	}
	return len(p), nil
}
