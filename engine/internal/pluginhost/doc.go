// Package pluginhost runs out-of-process stage plugins for the engine: it
// starts a plugin binary with hashicorp/go-plugin (gRPC only, automatic
// mutual TLS, the sdk.Handshake, an optional SHA-256 pin), configures it,
// and presents it as an sdk.Processor and sdk.Closer that the engine's
// chain calls like an in-process one.
//
// A Plugin supervises its process. A call that finds the process gone or
// its connection broken, or that exceeds Spec.Timeout, fails with
// ErrPluginShutdown; the process is killed (if it still runs) and started
// and configured again in the background, after a backoff of 100ms that
// doubles with each restart in a row up to 5s. The restart is logged at
// WARN with the plugin's name and the reason. The engine retries the failed
// batch, and since a batch's outputs are committed only after Process
// succeeds, nothing is lost or duplicated under exactly-once.
//
// The plugin's log lines (JSON from the SDK's logger, go-plugin's own, and
// anything else on its stderr or stdout) reach the engine's slog logger
// with plugin=<name>.
package pluginhost
