package pipeline

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testEnv is the environment the testdata files are loaded with.
func testEnv(name string) (string, bool) {
	plugins, _ := filepath.Abs("testdata/billing-plugins") // stand-ins for the billing file's plugins
	env := map[string]string{"SET_VAR": "set", "EMPTY_VAR": "", "BILLING_PLUGIN_DIR": plugins}
	v, ok := env[name]
	return v, ok
}

// checkGolden compares got with the golden file, or rewrites it with
// -update.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", golden, got, want)
	}
}

// problems loads and validates path as `engine validate` does and returns
// the messages, one a line.
func problems(t *testing.T, path string) string {
	t.Helper()
	f, err := Load(path, WithLookupEnv(testEnv))
	if err == nil {
		err = Validate(f, ValidateOptions{Builtin: engineBuiltin})
	}
	if err == nil {
		return ""
	}
	var list List
	if !errors.As(err, &list) {
		t.Fatalf("got %T %v, want a List", err, err)
	}
	return err.Error() + "\n"
}

func TestInvalidFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/invalid/*.yaml: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			got := problems(t, path)
			if got == "" {
				t.Fatalf("got no problems, want some")
			}
			checkGolden(t, strings.TrimSuffix(path, ".yaml")+".golden", got)
		})
	}
}

func TestGraphGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/graph/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../../pipelines/billing.yaml")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Load(path, WithLookupEnv(testEnv))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "graph", strings.TrimSuffix(filepath.Base(path), ".yaml")+".mmd")
			checkGolden(t, golden, Graph(f))
		})
	}
}
