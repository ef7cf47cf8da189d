package pluginhost

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogToSlog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).With("plugin", "x")
	var h hclog.Logger = newHCLogger(log)
	h.Debug("dropped")
	h.Info("plugin process exited", "plugin", "/bin/x", "id", 7)
	h.Named("sub").With("k", "v").Warn("line", "timestamp", "2025-01-01", "n", 1)
	h.Error("odd", "lonely")
	want := []string{
		`level=INFO msg="plugin process exited" plugin=x path=/bin/x id=7`,
		`level=WARN msg=line plugin=x k=v n=1`,
		`level=ERROR msg=odd plugin=x !BADKEY=lonely`,
	}
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if h.GetLevel() != hclog.Info || h.IsDebug() || !h.IsInfo() {
		t.Errorf("level: got %v, debug %v, info %v; want info", h.GetLevel(), h.IsDebug(), h.IsInfo())
	}
}

func TestKillAwareQuietensExpectedComplaints(t *testing.T) {
	var buf bytes.Buffer
	killed := new(atomic.Bool)
	k := &killAware{hclogger: hclogger{log: slog.New(slog.NewTextHandler(&buf, nil))}, killed: killed}
	k.Error("plugin process exited", "error", "signal: killed")
	killed.Store(true)
	k.Named("n").Error("plugin process exited", "error", "signal: killed")
	k.Error("something else")
	out := buf.String()
	if strings.Count(out, "level=ERROR") != 2 || strings.Count(out, "plugin process exited") != 1 {
		t.Errorf("got:\n%s\nwant the exit logged as an error before the kill only", out)
	}
}

func TestLineWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newLineWriter(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelInfo, "stdout")
	for _, s := range []string{"hel", "lo\nwor", "ld\r\n\n", "partial"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if !strings.Contains(out, "msg=hello stream=stdout") || !strings.Contains(out, "msg=world stream=stdout") || strings.Contains(out, "partial") {
		t.Errorf("got:\n%s", out)
	}
}
