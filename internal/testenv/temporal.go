package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// Temporal is one Temporal CLI dev server (no UI), its state in a file of the test's, so it
// can be restarted with everything it knew.
type Temporal struct {
	HostPort  string
	Namespace string
	server    *testsuite.DevServer
	opts      testsuite.DevServerOptions
	t         testing.TB
}

// StartTemporal starts the Temporal dev server with the given custom search attributes
// registered (Keyword or Text); it is stopped when the test ends.
func StartTemporal(t testing.TB, attrs ...temporal.SearchAttributeKey) *Temporal {
	t.Helper()
	bin := findBinary(t, "TEMPORAL_BIN", "temporal")
	port := FreePort(t)
	hostPort := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var sa temporal.SearchAttributes
	if len(attrs) > 0 {
		updates := make([]temporal.SearchAttributeUpdate, 0, len(attrs))
		for _, k := range attrs {
			switch k := k.(type) {
			case temporal.SearchAttributeKeyKeyword:
				updates = append(updates, k.ValueSet(""))
			case temporal.SearchAttributeKeyString:
				updates = append(updates, k.ValueSet(""))
			default:
				t.Fatalf("testenv: search attribute %s: type %s not supported", k.GetName(), k.GetValueType())
			}
		}
		sa = temporal.NewSearchAttributes(updates...)
	}
	tp := &Temporal{HostPort: hostPort, Namespace: "default", t: t, opts: testsuite.DevServerOptions{
		ExistingPath:     bin,
		ClientOptions:    &client.Options{HostPort: hostPort, Namespace: "default"},
		LogLevel:         "error",
		DBFilename:       filepath.Join(t.TempDir(), "temporal.db"),
		SearchAttributes: sa,
		ExtraArgs:        []string{"--headless", "--http-port", fmt.Sprint(FreePort(t)), "--metrics-port", fmt.Sprint(FreePort(t))},
	}}
	tp.start(ctx)
	t.Cleanup(tp.Stop)
	return tp
}

func (tp *Temporal) start(ctx context.Context) {
	out := &syncBuffer{}
	tp.opts.Stdout, tp.opts.Stderr = out, out
	srv, err := testsuite.StartDevServer(ctx, tp.opts)
	if err != nil {
		tp.t.Fatalf("start temporal dev server (%s): %v\n%s", tp.opts.ExistingPath, err, out.String())
	}
	srv.Client().Close()
	tp.server = srv
}

// Stop stops the server (its state stays in its file).
func (tp *Temporal) Stop() {
	if tp.server == nil {
		return
	}
	if err := tp.server.Stop(); err != nil && os.Getenv("TESTENV_VERBOSE") != "" {
		tp.t.Logf("stop temporal: %v", err)
	}
	tp.server = nil
}

// Restart stops the server and starts it again on the same port with the same state.
func (tp *Temporal) Restart() {
	tp.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tp.start(ctx)
}

// Client dials the server; the client is closed when the test ends.
func (tp *Temporal) Client(t testing.TB) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: tp.HostPort, Namespace: tp.Namespace, Logger: quietLogger{}})
	if err != nil {
		t.Fatalf("dial temporal %s: %v", tp.HostPort, err)
	}
	t.Cleanup(c.Close)
	return c
}

// RestartWithUI stops the server and starts it again with the same state and the Web UI on
// uiPort, for looking at what tests left (the screenshots in docs/ are taken so).
func (tp *Temporal) RestartWithUI(uiPort int) {
	tp.opts.EnableUI, tp.opts.UIPort = true, fmt.Sprint(uiPort)
	tp.opts.ExtraArgs = slices.DeleteFunc(slices.Clone(tp.opts.ExtraArgs), func(a string) bool { return a == "--headless" })
	tp.Restart()
}
