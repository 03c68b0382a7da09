//go:build screenshot

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

// TestUIScreenshot takes docs/temporal-ui*.png (the run list with each run's summary, a
// restore's memo and its user metadata): a real backup, a dry run and a restore on the test
// servers, seen through the Temporal dev server's Web UI by headless Chromium (Debian's
// `chromium`), driven over the DevTools protocol. It fails unless the list shows every run's
// summary and each run page shows what it is taken for:
//
//	go test -tags screenshot -run TestUIScreenshot ./starter
func TestUIScreenshot(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("headless Chromium is needed (Debian package chromium): %v", err)
	}
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
	dry, _, err := tg.restoreCLI(t, "--restore-point", f.backup.URL, "--restore-version", "1", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	rep, _, err := tg.restoreCLI(t, "--restore-point", f.backup.URL, "--restore-version", "1")
	if err != nil {
		t.Fatal(err)
	}
	backupSum, _ := runSummary(t, c, backupRunID(t, c, f.tp.Namespace, f.backup.URL))
	drySum, _ := runSummary(t, c, dry.WorkflowID)
	restoreSum, _ := runSummary(t, c, rep.WorkflowID)

	ui := newBrowser(t, chromium)
	// The list's columns are the UI's per-browser setting: localStorage
	// "namespace-workflow-table-columns", a JSON map of namespace to {label, pinned} columns,
	// where custom search attributes are labelled by name (temporalio/ui
	// src/lib/stores/configurable-table-columns.ts, persistedWorkflowTableColumns and
	// availableCustomSearchAttributeColumns; src/lib/stores/persist-store.ts writes it). The
	// summary column is set here as an operator sets it once with the table's gear.
	columns, err := json.Marshal(map[string][]map[string]any{f.tp.Namespace: {
		{"label": "Status", "pinned": true}, {"label": result.SummaryAttributeName, "pinned": true},
		{"label": "Workflow ID", "pinned": false}, {"label": "Type", "pinned": false}, {"label": "End", "pinned": false},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ui.open(base)
	if _, err := chromedp.Run(ui.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`localStorage.setItem("namespace-workflow-table-columns", %q), true`, columns))); err != nil {
		t.Fatal(err)
	}
	ui.shoot(base, "temporal-ui-list.png", backupSum, drySum, restoreSum)
	ui.shoot(runURL(rep.WorkflowID)+"/memo", "temporal-ui.png", restoreSum)
	ui.shoot(runURL(rep.WorkflowID)+"/user-metadata", "temporal-ui-metadata.png", staticSummary(t, c, rep.WorkflowID))
}

// browser is one headless Chromium with its own profile, driven over the DevTools protocol.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1920, 900), chromedp.Flag("disable-quic", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser, which lives as long as this context: it gets no
	// timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return &browser{t: t, ctx: ctx}
}

// open navigates to page.
func (b *browser) open(page string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		b.t.Fatalf("open %s: %v", page, err)
	}
}

// shoot opens page, waits until its text holds every one of want, and saves the window as
// docs/name. A page that never shows them fails the test, naming what is missing.
func (b *browser) shoot(page, name string, want ...string) {
	b.t.Helper()
	wants, err := json.Marshal(want)
	if err != nil {
		b.t.Fatal(err)
	}
	b.open(page)
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	// The UI renders user metadata (Markdown) in iframes of its own origin (/render): their
	// text is in the frames' documents, not in the page's.
	shown := `[document, ...[...document.querySelectorAll("iframe")].map(f => f.contentDocument)].map(d => d?.body?.innerText ?? "").join("\n")`
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`%s.every(w => (%s).includes(w))`, wants, shown), chromedp.WithPollingTimeout(45*time.Second)))
	if err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](shown))
		b.t.Fatalf("%s: %v; want %q in the page, which reads:\n%s", page, err, want, text)
	}
	if err := chromedp.Do(ctx, chromedp.Sleep(time.Second)); err != nil { // the table's last layout pass
		b.t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	out := filepath.Join("..", "docs", name)
	if err := os.WriteFile(out, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("%s (%d bytes): %s shows %s", name, len(png), page, strings.Join(want, " | "))
}
