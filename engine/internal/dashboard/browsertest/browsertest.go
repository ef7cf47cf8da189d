// Package browsertest drives a page in headless Chromium for tests of the
// dashboard: open it, run actions, evaluate JavaScript, wait for a
// condition, and collect what the page's console reported.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where the tests expect Chromium: Debian's chromium
// package, which .ci/run installs.
const ChromiumPath = "/usr/bin/chromium"

// Page is a tab of a headless Chromium, with the problems its console
// reported.
type Page struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

// Open starts Chromium with a 1280x900 window on url and closes it when
// the test ends. The test fails, rather than skips, when Chromium is not
// installed.
func Open(t *testing.T, url string) *Page {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Fatalf("the dashboard tests need Chromium at %s: install Debian's chromium package (apt-get install chromium; the CI script installs it): %v", ChromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", "en-US")) // numbers as the tests read them: 1,234.5
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	p := &Page{t: t, ctx: ctx}
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to ctx
		t.Fatalf("start Chromium: %v", err)
	}
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				p.mu.Lock()
				p.problems = append(p.problems, m.String())
				p.mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(startCtx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return p
}

// Context is the tab's context, for chromedp calls of a test's own.
func (p *Page) Context() context.Context { return p.ctx }

// Do runs actions in the tab, within 20 seconds.
func (p *Page) Do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// Text evaluates the JavaScript expression expr to a string.
func (p *Page) Text(expr string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// WaitFor polls the JavaScript predicate expr until it holds, and fails
// the test, with what the page shows, when it does not within timeout.
func (p *Page) WaitFor(what string, timeout time.Duration, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Boolean(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited %s for %s: %s is not true (err %v); the page shows:\n%s", timeout, what, expr, err,
				p.Text(`document.querySelector('main').innerText.slice(0, 3000)`))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// NumberOf is a JavaScript expression: the number the element id shows,
// its digits read without the grouping separators (NaN when it shows none).
func NumberOf(id string) string {
	return fmt.Sprintf(`Number(document.getElementById(%q).textContent.replace(/[^\d.]/g, '') || 'NaN')`, id)
}

// Number waits until the element id shows a number of at least atLeast,
// and returns it.
func (p *Page) Number(id string, timeout time.Duration, atLeast int64) int64 {
	p.t.Helper()
	p.WaitFor(fmt.Sprintf("%s to show at least %d", id, atLeast), timeout, fmt.Sprintf(`%s >= %d`, NumberOf(id), atLeast))
	var n int64
	if _, err := fmt.Sscan(p.Text(`String(`+NumberOf(id)+`)`), &n); err != nil {
		p.t.Fatalf("%s: %v", id, err)
	}
	return n
}

// CheckConsole fails the test for the uncaught exceptions and Content
// Security Policy violations the page reported.
func (p *Page) CheckConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("browser console: %s", m)
	}
}
