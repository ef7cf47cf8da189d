// Command testplugin serves testproc, the host tests' faulty no-op
// processor, as an out-of-process plugin.
package main

import (
	"github.com/billing-engine/billing/engine/internal/testproc"
	"github.com/billing-engine/billing/engine/sdk"
)

func main() {
	sdk.Serve(testproc.New, sdk.WithInfo(sdk.Info{Name: "testplugin", Version: "0.1.0", Outputs: testproc.Outputs}))
}
