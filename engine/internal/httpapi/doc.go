// Package httpapi is the engine's HTTP API: routing, JSON in and out,
// application/problem+json errors, bearer-token auth, and the handlers for
// health, tables, clients, transactions and billing. Handlers get what they
// serve through small interfaces, so each part can be tested with an
// httptest server.
package httpapi
