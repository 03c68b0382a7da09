// Package health is the readiness probe the API and the worker serve on /readyz: every
// dependency checked at once, each bounded, and a report naming what is unreachable.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Check is one dependency a readiness probe tries.
type Check struct {
	Name string
	// Fn returns nil when the dependency answers; it must return once ctx ends.
	Fn func(ctx context.Context) error
}

// Report is the /readyz body: "ready", or "not ready" with the reasons.
type Report struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Checks maps each check's name to "ok" or its error.
	Checks map[string]string `json:"checks"`
}

// Probe runs every check at once, each bounded by timeout, and reports whether all passed.
// It never caches: a success a moment ago must not hide an outage that began since. redact
// removes secrets from the error messages before they leave the process.
func Probe(ctx context.Context, checks []Check, timeout time.Duration, redact func(string) string) (Report, bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Fn(ctx)
		}()
	}
	wg.Wait()
	rep := Report{Status: "ready", Checks: make(map[string]string, len(checks))}
	var reasons []string
	for i, c := range checks {
		if errs[i] == nil {
			rep.Checks[c.Name] = "ok"
			continue
		}
		msg := redact(errs[i].Error())
		rep.Checks[c.Name] = msg
		reasons = append(reasons, c.Name+": "+msg)
	}
	if len(reasons) > 0 {
		rep.Status = "not ready"
		rep.Error = strings.Join(reasons, "; ")
		return rep, false
	}
	return rep, true
}

// WriteJSON writes body as indented JSON, never cached: the form of every answer the
// health endpoints give.
func WriteJSON(w http.ResponseWriter, status int, body any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(body)
}

// Live answers 200 {"status": "ok"}: the process runs and serves HTTP.
func Live(w http.ResponseWriter, _ *http.Request) {
	_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Ready answers /readyz with Probe's report: 200 when every check passes, else 503.
func Ready(w http.ResponseWriter, r *http.Request, checks []Check, timeout time.Duration, redact func(string) string) {
	rep, ok := Probe(r.Context(), checks, timeout, redact)
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	_ = WriteJSON(w, status, rep)
}
