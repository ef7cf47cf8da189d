package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/billing-engine/billing/engine/internal/pluginrpc"
	"github.com/billing-engine/billing/engine/sdk"
)

// instance is one running plugin process.
type instance struct {
	client *plugin.Client
	cmd    *exec.Cmd
	rpc    *pluginrpc.Client
	pid    int
	// killed is set before the host kills the process, so that go-plugin's
	// complaints about it are logged as expected, not as errors.
	killed *atomic.Bool
}

// kill ends the process at once (SIGKILL) and releases the client.
func (in *instance) kill() {
	in.killed.Store(true)
	if in.cmd.Process != nil {
		_ = in.cmd.Process.Kill()
	}
	in.client.Kill()
}

// stop asks the plugin to shut down (it closes its Processor), killing
// it after go-plugin's grace period of two seconds.
func (in *instance) stop() {
	in.killed.Store(true)
	in.client.Kill()
}

// exitedWithin reports whether the process has exited, waiting up to d.
func (in *instance) exitedWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !in.client.Exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// launch starts the binary, completes the handshake and configures it.
func (p *Plugin) launch(ctx context.Context) (*instance, sdk.Info, error) {
	if err := checkCommand(p.spec); err != nil {
		return nil, sdk.Info{}, err
	}
	in, err := p.startProcess()
	if err != nil {
		return nil, sdk.Info{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	info, err := in.rpc.Info(cctx)
	if err != nil {
		in.kill()
		return nil, sdk.Info{}, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if err := in.rpc.Configure(cctx, p.cfg); err != nil {
		in.stop()
		var rpcErr *pluginrpc.Error
		if errors.As(err, &rpcErr) {
			return nil, sdk.Info{}, fmt.Errorf("%w: %s", ErrConfigure, rpcErr.Message)
		}
		return nil, sdk.Info{}, fmt.Errorf("%w: %w", ErrConfigure, err)
	}
	return in, info, nil
}

func (p *Plugin) startProcess() (*instance, error) {
	killed := new(atomic.Bool)
	cmd := exec.Command(p.spec.Command, p.spec.Args...)
	cmd.Env = []string{sdk.LogLevelEnv + "=" + levelName(p.log)}
	cc := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginName: pluginrpc.ClientPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     p.o.startTimeout,
		Logger:           &killAware{hclogger: hclogger{log: p.log}, killed: killed},
		Stderr:           io.Discard,
		SyncStdout:       newLineWriter(p.log, slog.LevelInfo, "stdout"),
		SyncStderr:       newLineWriter(p.log, slog.LevelInfo, "stderr"),
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(sdk.MaxMessageBytes), grpc.MaxCallSendMsgSize(sdk.MaxMessageBytes)),
			grpc.WithInitialWindowSize(8 << 20), grpc.WithInitialConnWindowSize(8 << 20),
		},
	}
	if p.spec.SHA256 != "" {
		sum, err := hex.DecodeString(p.spec.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("%w: sha256 %q: want 64 hex digits", ErrChecksum, p.spec.SHA256)
		}
		cc.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := plugin.NewClient(cc)
	conn, err := client.Client()
	if err != nil {
		killed.Store(true)
		client.Kill()
		return nil, p.startError(err)
	}
	raw, err := conn.Dispense(sdk.PluginName)
	if err != nil {
		killed.Store(true)
		client.Kill()
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	in := &instance{client: client, cmd: cmd, rpc: raw.(*pluginrpc.Client), killed: killed}
	if cmd.Process != nil {
		in.pid = cmd.Process.Pid
	}
	return in, nil
}

// unrecognized starts go-plugin's error for a line that is not a handshake.
const unrecognized = "Unrecognized remote plugin message: "

// startError explains why go-plugin could not start the plugin.
func (p *Plugin) startError(err error) error {
	switch msg := err.Error(); {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("%w: command %s changed during start", ErrChecksum, p.spec.Command)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission), errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("%w %s: %w", ErrCommand, p.spec.Command, err)
	case strings.HasPrefix(msg, unrecognized):
		first, _, _ := strings.Cut(strings.TrimPrefix(msg, unrecognized), "\n")
		if first == "" {
			return fmt.Errorf("%w: %s printed no handshake before it exited or closed its output (is it a plugin built with engine/sdk.Serve?)", ErrHandshake, p.spec.Command)
		}
		return fmt.Errorf("%w: %s printed %q instead of the handshake (is it a plugin built with engine/sdk.Serve?)", ErrHandshake, p.spec.Command, first)
	case strings.Contains(msg, "exited before we could connect"):
		return fmt.Errorf("%w: %s exited before the handshake (is it a plugin built with engine/sdk.Serve?)", ErrHandshake, p.spec.Command)
	default:
		first, _, _ := strings.Cut(msg, "\n")
		return fmt.Errorf("%w: %s: %s", ErrHandshake, p.spec.Command, first)
	}
}

// checkCommand reports a missing or non-executable binary, or a checksum
// mismatch, before go-plugin tries it, with a clearer message.
func checkCommand(s Spec) error {
	st, err := os.Stat(s.Command)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w %s: no such file", ErrCommand, s.Command)
	case err != nil:
		return fmt.Errorf("%w %s: %w", ErrCommand, s.Command, err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%w %s: not a regular file", ErrCommand, s.Command)
	case st.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%w %s: not executable (mode %s)", ErrCommand, s.Command, st.Mode().Perm())
	}
	if s.SHA256 == "" {
		return nil
	}
	sum, err := FileSHA256(s.Command)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrCommand, s.Command, err)
	}
	if !strings.EqualFold(sum, s.SHA256) {
		return fmt.Errorf("%w: command %s has SHA-256 %s, want %s", ErrChecksum, s.Command, sum, strings.ToLower(s.SHA256))
	}
	return nil
}

// FileSHA256 returns the hex SHA-256 of the file at name: what a plugin
// declaration's sha256 pins.
func FileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// levelName is the lowest level l logs, for sdk.LogLevelEnv.
func levelName(l *slog.Logger) string {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, slog.LevelDebug):
		return "debug"
	case l.Enabled(ctx, slog.LevelInfo):
		return "info"
	case l.Enabled(ctx, slog.LevelWarn):
		return "warn"
	}
	return "error"
}

// killAware logs go-plugin's reports of a process the host killed on
// purpose at debug instead of as errors and warnings.
type killAware struct {
	hclogger
	killed *atomic.Bool
}

var expectedOnKill = map[string]bool{
	"plugin process exited":                   true,
	"plugin failed to exit gracefully":        true,
	"error closing client during Kill":        true,
	"error encountered while scanning stdout": true,
}

// Log implements hclog.Logger.
func (k *killAware) Log(level hclog.Level, msg string, args ...any) {
	if level > hclog.Debug && k.killed.Load() && expectedOnKill[msg] {
		level = hclog.Debug
	}
	k.hclogger.Log(level, msg, args...)
}

func (k *killAware) Trace(msg string, args ...any) { k.Log(hclog.Trace, msg, args...) }
func (k *killAware) Debug(msg string, args ...any) { k.Log(hclog.Debug, msg, args...) }
func (k *killAware) Info(msg string, args ...any)  { k.Log(hclog.Info, msg, args...) }
func (k *killAware) Warn(msg string, args ...any)  { k.Log(hclog.Warn, msg, args...) }
func (k *killAware) Error(msg string, args ...any) { k.Log(hclog.Error, msg, args...) }

// With keeps the kill awareness.
func (k *killAware) With(args ...any) hclog.Logger {
	return &killAware{hclogger: hclogger{log: k.log.With(cleanArgs(args)...), name: k.name}, killed: k.killed}
}

// Named keeps the kill awareness.
func (k *killAware) Named(name string) hclog.Logger {
	if k.name != "" {
		name = k.name + "." + name
	}
	return &killAware{hclogger: hclogger{log: k.log, name: name}, killed: k.killed}
}
