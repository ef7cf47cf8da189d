// Package dashboard serves the engine's live dashboard: one HTML page, its
// stylesheet and its script, embedded in the binary. The page needs no build
// step and loads nothing from another origin. It reads everything it shows
// from the HTTP API in the browser: the stats stream of GET /api/v1/events
// (throughput, consumer lag), the dead letters of GET /api/v1/dlq, the status
// query, and the client, transaction and invoice lists. When the API needs a
// bearer token, the page asks for it and keeps it in the browser's
// localStorage; the page and its assets themselves need no token.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/billing-engine/billing/engine/internal/httpapi"
	"github.com/billing-engine/billing/engine/iso4217"
)

//go:embed static
var static embed.FS

// AssetPrefix is the path the page's assets are served under, outside /api/
// so that loading them needs no token: the script is at
// AssetPrefix+"dashboard.js".
const AssetPrefix = "/dashboard/"

// ContentSecurityPolicy is the Content-Security-Policy of every answer of
// Handler: scripts, styles, images and fetches from the page's own origin
// only, no inline script or style, no plugins, no framing by other pages and
// no form posts.
const ContentSecurityPolicy = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// CurrenciesAsset is the asset, under AssetPrefix, that gives the page the
// number of minor-unit digits of each ISO 4217 currency, as a JSON object
// such as {"EUR":2,"JPY":0,...}, from package iso4217, so that the page shows
// amounts as the emails and invoices do.
const CurrenciesAsset = "currencies.json"

// asset is one file the handler serves.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes maps the extensions of the assets to their media types;
// they are set here rather than looked up in the system's MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
}

// handler serves the page and its assets.
type handler struct {
	assets map[string]asset
}

// Handler returns the dashboard's handler: the page for GET "/", and each
// asset for GET AssetPrefix+name. Register it for the ServeMux patterns
// "GET /{$}" and "GET /dashboard/{file}". Any other path is answered 404
// with a problem. Every answer carries ContentSecurityPolicy and an ETag,
// and must be revalidated (Cache-Control: no-cache), so a new binary's page
// is seen at once. The handler is safe for concurrent use. The assets are
// embedded at build time, so Handler panics only when the binary was built
// without them.
func Handler() http.Handler {
	h := &handler{assets: map[string]asset{}}
	files, err := fs.ReadDir(static, "static")
	if err != nil {
		panic("dashboard: embedded assets: " + err.Error())
	}
	for _, f := range files {
		body, err := fs.ReadFile(static, "static/"+f.Name())
		if err != nil {
			panic("dashboard: embedded assets: " + err.Error())
		}
		h.add(f.Name(), body)
	}
	body, err := json.Marshal(currencyDigits())
	if err != nil {
		panic("dashboard: currencies: " + err.Error())
	}
	h.add(CurrenciesAsset, body)
	return h
}

func (h *handler) add(name string, body []byte) {
	sum := sha256.Sum256(body)
	h.assets[name] = asset{body: body, contentType: contentTypes[path.Ext(name)], etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := "index.html"
	if r.URL.Path != "/" {
		n, ok := strings.CutPrefix(r.URL.Path, AssetPrefix)
		if !ok || n == "" || strings.Contains(n, "/") {
			n = ""
		}
		name = n
	}
	a, ok := h.assets[name]
	if !ok {
		httpapi.WriteProblem(w, r, http.StatusNotFound, "no dashboard asset "+r.URL.Path)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

// currencyDigits returns the minor-unit digits of every code iso4217 knows.
func currencyDigits() map[string]int {
	out := map[string]int{}
	code := []byte("AAA")
	for a := byte('A'); a <= 'Z'; a++ {
		for b := byte('A'); b <= 'Z'; b++ {
			for c := byte('A'); c <= 'Z'; c++ {
				code[0], code[1], code[2] = a, b, c
				if d, ok := iso4217.Digits(string(code)); ok {
					out[string(code)] = d
				}
			}
		}
	}
	return out
}
