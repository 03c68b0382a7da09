package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// Temporal is one Temporal CLI dev server (in-memory, no UI).
type Temporal struct {
	HostPort  string
	Namespace string
	server    *testsuite.DevServer
}

// StartTemporal starts the Temporal dev server with the given custom Keyword search attributes
// registered; it is stopped when the test ends.
func StartTemporal(t testing.TB, attrs ...temporal.SearchAttributeKeyKeyword) *Temporal {
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
			updates = append(updates, k.ValueSet(""))
		}
		sa = temporal.NewSearchAttributes(updates...)
	}
	out := &syncBuffer{}
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:     bin,
		ClientOptions:    &client.Options{HostPort: hostPort, Namespace: "default"},
		LogLevel:         "error",
		SearchAttributes: sa,
		ExtraArgs:        []string{"--headless", "--http-port", fmt.Sprint(FreePort(t)), "--metrics-port", fmt.Sprint(FreePort(t))},
		Stdout:           out,
		Stderr:           out,
	})
	if err != nil {
		t.Fatalf("start temporal dev server (%s): %v\n%s", bin, err, out.String())
	}
	srv.Client().Close()
	tp := &Temporal{HostPort: srv.FrontendHostPort(), Namespace: "default", server: srv}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil && os.Getenv("TESTENV_VERBOSE") != "" {
			t.Logf("stop temporal: %v", err)
		}
	})
	return tp
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
