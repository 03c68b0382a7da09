// Package monitoring holds the tests of the alert rules: promtool checks them and runs
// their unit tests over synthetic series (alerts_test.yaml). The dashboard's queries are
// tested in the api package, against the metrics the API serves.
package monitoring

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Promtool(t), args...)
	cmd.Dir = filepath.Join(testenv.RepoRoot(), "deploy", "monitoring")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAlertRulesCheck(t *testing.T) {
	out := promtool(t, "check", "rules", "alerts.yaml")
	if !strings.Contains(out, "SUCCESS: 5 rules found") {
		t.Errorf("promtool check rules:\n%s", out)
	}
}

func TestAlertRulesUnitTests(t *testing.T) {
	out := promtool(t, "test", "rules", "alerts_test.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}
