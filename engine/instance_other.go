//go:build !unix

package engine

import "os"

// lockFile does not lock where flock(2) is missing: there, keeping two
// engine processes off one data directory is left to the operator.
func lockFile(*os.File) error { return nil }
