package pluginhost

import (
	"errors"
	"strconv"
)

// What went wrong, wrapped by an *Error. Check with errors.Is.
var (
	// ErrCommand reports a plugin binary that is missing, not a regular
	// file or not executable.
	ErrCommand = errors.New("command")
	// ErrChecksum reports a binary whose SHA-256 is not the pinned one.
	ErrChecksum = errors.New("sha256 mismatch")
	// ErrHandshake reports a binary that started but did not complete the
	// go-plugin handshake or the Info call: not a plugin, or a plugin of
	// another protocol version.
	ErrHandshake = errors.New("handshake failed")
	// ErrConfigure reports a plugin that rejected its configuration.
	ErrConfigure = errors.New("configure")
	// ErrPluginShutdown reports a call that failed because the plugin
	// process crashed, lost its connection or hung; the plugin is being
	// restarted, and the call may be retried.
	ErrPluginShutdown = errors.New("plugin shut down")
	// ErrClosed reports a call after Close.
	ErrClosed = errors.New("closed")
)

// Error is a failure of the plugin named Plugin. It prints as
// `pluginhost: plugin "name": <Err>`.
type Error struct {
	// Plugin is the plugin's name.
	Plugin string
	// Err says what failed; it wraps one of the sentinels above, or the
	// plugin's own error from a Process call.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	return "pluginhost: plugin " + strconv.Quote(e.Plugin) + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }
