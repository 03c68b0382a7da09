package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/backupdiff"
)

// diffCmd prints what changed from one archive to another.
func diffCmd(ctx context.Context, a archives, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	urls, err := parseArgs(fs, args)
	if err != nil || len(urls) != 2 {
		return fmt.Errorf("diff: want two archive URLs, the older first%s\n%s", argErr(err), usage)
	}
	var in [2]backupdiff.Input
	var enc [2]*archive.Encryption
	for i, u := range urls {
		rc, url, e, err := a.open(ctx, u)
		if err != nil {
			return fmt.Errorf("diff: %w", err)
		}
		defer rc.Close()
		in[i], enc[i] = backupdiff.Input{Name: url, R: rc}, e
	}
	res, err := backupdiff.Diff(ctx, in[0], in[1], backupdiff.Options{TempDir: a.tempDir})
	if err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	// Read decrypted: say how each is stored.
	res.From.Manifest.Encryption, res.To.Manifest.Encryption = enc[0], enc[1]
	if *asJSON {
		return writeJSON(stdout, res)
	}
	return res.WriteText(stdout)
}
