//go:build screenshot

package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

// TestUIScreenshot takes docs/temporal-ui*.png (the run list, a restore's memo and its user
// metadata): a real backup, a dry run and a restore on the test servers, seen through the
// Temporal dev server's Web UI by headless Chromium (Debian's `chromium`). A documentation
// step, not a check:
//
//	go test -tags screenshot -run TestUIScreenshot ./starter
func TestUIScreenshot(t *testing.T) {
	f := newRestoreFixture(t)
	uiPort := testenv.FreePort(t)
	f.tp.RestartWithUI(uiPort)
	c := f.tp.Client(t)
	base := fmt.Sprintf("http://127.0.0.1:%d/namespaces/%s/workflows", uiPort, f.tp.Namespace)
	runURL := func(id string) string {
		d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		return base + "/" + url.PathEscape(id) + "/" + d.WorkflowExecutionInfo.Execution.RunId
	}

	tg := f.newTarget(t, "main", nil)
	if _, _, err := tg.restoreCLI(t, "--restore-point", f.backup.URL, "--restore-version", "1", "--dry-run"); err != nil {
		t.Fatal(err)
	}
	rep, _, err := tg.restoreCLI(t, "--restore-point", f.backup.URL, "--restore-version", "1")
	if err != nil {
		t.Fatal(err)
	}
	shoot(t, base, "temporal-ui-list.png")
	shoot(t, runURL(rep.WorkflowID)+"/memo", "temporal-ui.png")
	shoot(t, runURL(rep.WorkflowID)+"/user-metadata", "temporal-ui-metadata.png")
}

// shoot saves a headless Chromium screenshot of page as docs/name. Chromium waits until the
// page is idle, so a running run's page (the UI polls it) is only taken once the run ends.
func shoot(t *testing.T, page, name string) {
	t.Helper()
	out, err := filepath.Abs(filepath.Join("..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--window-size=1600,900", "--screenshot="+out, "--virtual-time-budget=15000", page)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", page, err, b)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", name, page)
}
