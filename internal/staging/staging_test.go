package staging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A child process (this test binary, re-run) claims a directory, writes a file into it,
// prints the directory and waits to be killed.
func TestMain(m *testing.M) {
	if root := os.Getenv("STAGING_TEST_CLAIM"); root != "" {
		d, err := Claim(root)
		if err != nil {
			os.Exit(2)
		}
		if err := os.WriteFile(filepath.Join(d.Path, "dump"), make([]byte, 1<<20), 0o600); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(d.Path + "\n")
		select {}
	}
	os.Exit(m.Run())
}

func claimInChild(t *testing.T, root string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STAGING_TEST_CLAIM="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return cmd, strings.TrimSpace(line)
}

func TestSweepRemovesOnlyWhatDeadProcessesLeft(t *testing.T) {
	root := t.TempDir()
	mine, err := Claim(root)
	if err != nil {
		t.Fatal(err)
	}
	alive, aliveDir := claimInChild(t, root)
	killed, killedDir := claimInChild(t, root)
	if err := killed.Process.Kill(); err != nil { // as kill -9 does: no chance to clean up
		t.Fatal(err)
	}
	killed.Wait()
	if err := os.WriteFile(filepath.Join(root, "not-ours"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	s, err := Sweep(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Dirs, []string{killedDir}) || s.Bytes != 1<<20 {
		t.Fatalf("swept %v (%d bytes), want only %s", s.Dirs, s.Bytes, killedDir)
	}
	for _, p := range []string{mine.Path, aliveDir, filepath.Join(root, "not-ours")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(killedDir + lockSuffix); !os.IsNotExist(err) {
		t.Errorf("the dead process's lock file stays: %v", err)
	}

	// Once the other process is gone too, its directory goes at the next sweep; ours stays
	// until released.
	alive.Process.Kill()
	alive.Wait()
	if s, err := Sweep(root); err != nil || !slices.Equal(s.Dirs, []string{aliveDir}) {
		t.Fatalf("second sweep %v, %v", s.Dirs, err)
	}
	if err := mine.Release(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 || entries[0].Name() != "not-ours" {
		t.Errorf("left in the root: %v", entries)
	}
}
