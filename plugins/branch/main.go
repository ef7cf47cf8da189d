// Command branch serves the predicate router (package
// plugins/branch/router) as an out-of-process plugin. The engine runs the
// same router in-process by default; declare the plugin with a command to
// run this binary instead:
//
//	plugins:
//	  branch:
//	    command: ../bin/plugins/branch
//
// Settings are those of router.New (routes and an optional default).
package main

import (
	"github.com/billing-engine/billing/engine/sdk"
	"github.com/billing-engine/billing/plugins/branch/router"
)

func main() {
	sdk.Serve(router.New, sdk.WithInfo(sdk.Info{Name: router.Name}))
}
