package state

import (
	"strings"

	"github.com/cockroachdb/pebble/vfs"
)

// yieldingFS runs yield before every write to a table file (*.sst) it
// creates; see WithWriteYield. Pebble writes table files only while
// flushing and compacting, with its own mutex released, so yield runs
// where a reader of the store may run too. Other files (the manifest, the
// options) are written as they are.
type yieldingFS struct {
	vfs.FS
	yield func()
}

func (fs yieldingFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return yieldingFile{File: f, yield: fs.yield}, nil
}

// yieldingFile is a table file being written; see yieldingFS.
type yieldingFile struct {
	vfs.File
	yield func()
}

func (f yieldingFile) Write(p []byte) (int, error) {
	f.yield()
	return f.File.Write(p)
}

// Unwrap returns the file system under the yields, for vfs.Root.
func (fs yieldingFS) Unwrap() vfs.FS { return fs.FS }
