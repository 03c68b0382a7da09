package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

// servedMetrics returns the API's /metrics text and the names of its metric families,
// with a backup made and the schedule on, so every metric is there.
func servedMetrics(t *testing.T) (string, map[string]bool) {
	t.Helper()
	f := newFixture(t)
	f.interval = 10 * time.Minute
	f.addRun(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 3, false)
	f.start()
	status, _, body := f.get("/metrics")
	if status != 200 {
		t.Fatalf("/metrics = %d %s", status, body)
	}
	text := expfmt.NewTextParser(model.LegacyValidation)
	families, err := text.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for name := range families {
		names[name] = true
	}
	return string(body), names
}

// metricNames returns the metric names expr selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("not PromQL: %q: %v", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("%q selects series by labels alone; name the metric", expr)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a row's
}

// Every query of the Grafana dashboard is PromQL and names only metrics the API serves,
// and together they cover what an operator looks at.
func TestDashboardQueriesNameServedMetrics(t *testing.T) {
	_, served := servedMetrics(t)
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "monitoring", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	used := map[string]bool{}
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				for _, name := range metricNames(t, tg.Expr) {
					if !served[name] {
						t.Errorf("panel %q: %s is not served by the API (query %q)", p.Title, name, tg.Expr)
					}
					used[name] = true
				}
			}
		}
	}
	walk(dash.Panels)
	for _, want := range []string{"backup_last_success_timestamp_seconds", "backup_count", "backup_failure_count",
		"backup_size_compressed", "backup_size_non_compressed", "backup_execution_time_prepare", "backup_execution_time_dump",
		"backup_execution_time_compression", "backup_execution_time_upload", "backup_znodes"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

// The alert rules name served metrics too, except the restore drill's, which the worker's
// drill serves.
func TestAlertRulesNameServedMetrics(t *testing.T) {
	_, served := servedMetrics(t)
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "monitoring", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			for _, name := range metricNames(t, r.Expr) {
				if !served[name] && name != "backup_last_verified_timestamp_seconds" {
					t.Errorf("alert %s: %s is not served by the API", r.Alert, name)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules read")
	}
}

// seedNames are StreamNative's metric names, and the names the lifecycle issue fixes in the
// same style (backup_prune_deleted_count, backup_retained_count, backup_verify_failure_count),
// kept although they break Prometheus's naming rules (counters without _total, gauges with
// it or with _count): promtool's complaints about them are expected, any other is not.
var seedNames = []string{"backup_count", "backup_failure_count", "backup_size_total", "backup_execution_time_total",
	"backup_prune_deleted_count", "backup_retained_count", "backup_verify_failure_count"}

func TestMetricsPassPromtoolApartFromSeedNames(t *testing.T) {
	body, _ := servedMetrics(t)
	cmd := exec.Command(testenv.Promtool(t), "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	flagged := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		name, _, ok := strings.Cut(line, " ") // "backup_count counter metrics should have ..."
		if !ok || !slices.Contains(seedNames, name) {
			t.Errorf("promtool check metrics: %s", line)
		}
		flagged[name] = true
	}
	if err == nil {
		t.Error("promtool found nothing: are the seed's names still served?")
	}
	for _, n := range seedNames {
		if !flagged[n] {
			t.Errorf("promtool did not flag %s: drop it from the exceptions if it was renamed", n)
		}
	}
}
