// Command oldplugin speaks the plugin protocol version before the host's
// (engine/sdk.ProtocolVersion - 1) in the go-plugin handshake, and serves
// nothing: the host must refuse it before any call.
package main

import (
	"github.com/hashicorp/go-plugin"

	"github.com/billing-engine/billing/engine/sdk"
)

func main() {
	hs := sdk.Handshake
	hs.ProtocolVersion = sdk.ProtocolVersion - 1
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         plugin.PluginSet{},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
