package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.temporal.io/sdk/client"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/health"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/workflows"
)

func tryGet(url string) (int, []byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	status, body, err := tryGet(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return status, body
}

// waitStatus polls url until it answers want (the server may not listen yet), and returns
// that body.
func waitStatus(t *testing.T, url string, want int) []byte {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, body, err := tryGet(url)
		if err == nil && status == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %s %v, want %d", url, status, body, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sdkSample returns the value of the sample of family name whose labels include want.
func sdkSample(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Summary != nil:
			return float64(m.GetSummary().GetSampleCount()), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// The worker process (run, as main calls it) serves its Temporal SDK metrics on
// worker.metricsPort, and health endpoints that follow Temporal going down and coming back.
func TestWorkerServesSDKMetricsAndHealth(t *testing.T) {
	tp := testenv.StartTemporal(t, workflows.SearchAttributes...)
	zoo := testenv.StartZooKeeper(t)
	zc, _, err := zk.Connect([]string{zoo.Addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/admin", "/admin/policies", "/managed-ledgers"} {
		if _, err := zc.Create(p, []byte("data of "+p), 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	zc.Close()

	port := testenv.FreePort(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf(`zookeeper:
  servers: %q
temporal:
  hostPort: %q
  namespace: %q
  taskQueue: worker-metrics
backup:
  bucket: "file://%s"
  stagingDir: %q
worker:
  metricsPort: %d
`, zoo.Addr, tp.HostPort, tp.Namespace, t.TempDir(), t.TempDir(), port)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfgPath, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	var ready health.Report
	if err := json.Unmarshal(waitStatus(t, base+"/readyz", 200), &ready); err != nil || ready.Checks["temporal"] != "ok" {
		t.Fatalf("readyz = %+v, %v", ready, err)
	}
	if status, body := get(t, base+"/healthz"); status != 200 {
		t.Fatalf("healthz = %d %s", status, body)
	}

	// A backup through this worker, so the SDK has workflow and activity metrics to report.
	tc := tp.Client(t)
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	wr, err := tc.ExecuteWorkflow(wctx, client.StartWorkflowOptions{ID: "worker-metrics-backup", TaskQueue: "worker-metrics"}, result.BackupWorkflowName)
	if err != nil {
		t.Fatal(err)
	}
	var res result.Backup
	if err := wr.Get(wctx, &res); err != nil {
		t.Fatalf("backup: %v", err)
	}

	// Tally hands the values to the Prometheus registry once a second.
	want := map[string]string{"workflow_type": result.BackupWorkflowName, "task_queue": "worker-metrics", "namespace": tp.Namespace}
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := get(t, base+"/metrics")
		if status != 200 {
			t.Fatalf("/metrics = %d %s", status, body)
		}
		parser := expfmt.NewTextParser(model.LegacyValidation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("/metrics is not Prometheus text: %v", err)
		}
		completed, ok1 := sdkSample(families, "temporal_workflow_completed_total", want)
		activities, ok2 := sdkSample(families, "temporal_activity_execution_latency_seconds",
			// Session activities run on the worker's own session queue, not worker-metrics.
			map[string]string{"activity_type": "Dump", "workflow_type": result.BackupWorkflowName, "namespace": tp.Namespace})
		if ok1 && completed >= 1 && ok2 && activities >= 1 {
			if _, ok := families["go_goroutines"]; !ok {
				t.Error("/metrics lacks the Go runtime metrics")
			}
			for name := range families {
				if !strings.HasPrefix(name, "temporal_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
					t.Errorf("unexpected metric %s", name)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a backup, /metrics has temporal_workflow_completed_total %v (%v), activity latency count %v (%v):\n%s",
				completed, ok1, activities, ok2, body)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Temporal down: not ready, still alive. Back: ready again.
	tp.Stop()
	body := waitStatus(t, base+"/readyz", 503)
	if err := json.Unmarshal(body, &ready); err != nil || ready.Checks["temporal"] == "ok" || !strings.Contains(ready.Error, "temporal") {
		t.Fatalf("readyz with Temporal down = %s", body)
	}
	if status, body := get(t, base+"/healthz"); status != 200 {
		t.Fatalf("healthz with Temporal down = %d %s", status, body)
	}
	tp.Restart()
	waitStatus(t, base+"/readyz", 200)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	c := &http.Client{Timeout: time.Second}
	if _, err := c.Get(base + "/healthz"); err == nil {
		t.Error("the metrics port still answers after the worker stopped")
	}
}
