package pipeline

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad checks that Load, Validate, Graph and TopicSpecs never panic on
// any file, and that a failed Load always says why.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/invalid/*.yaml")
	graphs, _ := filepath.Glob("testdata/graph/*.yaml")
	for _, path := range append(append(seeds, graphs...), billingFile) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Relative paths resolve in testdata/invalid, as for the seeds.
		file, err := Parse("testdata/invalid/fuzz.yaml", data, WithLookupEnv(testEnv))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Parse failed with an empty message")
			}
			return
		}
		_ = Validate(file, ValidateOptions{})
		_ = Graph(file)
		_ = file.TopicSpecs()
	})
}
