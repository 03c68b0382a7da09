package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/inspect"
)

// inspectCmd prints what one archive holds.
func inspectCmd(ctx context.Context, a archives, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	urls, err := parseArgs(fs, args)
	if err != nil || len(urls) != 1 {
		return fmt.Errorf("inspect: want one archive URL%s\n%s", argErr(err), usage)
	}
	rc, url, enc, err := a.open(ctx, urls[0])
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	defer rc.Close()
	s, err := inspect.Read(ctx, rc)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", url, err)
	}
	s.URL = url
	s.Manifest.Encryption = enc // read decrypted: say how it is stored
	if *asJSON {
		return writeJSON(stdout, s)
	}
	return s.WriteText(stdout)
}
