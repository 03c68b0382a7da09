package archive

// Skipping records by path without decoding them, for the restore's apply and plan, which
// leave most of a Pulsar tree alone (BookKeeper's /ledgers) and already verified the whole
// archive. DecodeLine uses leadingPath for the same purpose.

import (
	"bytes"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// NextUnless is Next, except that a record whose path skip accepts is neither decoded nor
// validated: it is returned with only Path set, and skipped true. Skipped records still count
// towards the manifest's size, count and SHA-256, which are checked at the end as by Next.
// The path is read from the start of the line, where StreamWriter puts it; a line that does
// not start so, or whose path has JSON escapes, is decoded as by Next before skip is asked.
// Use it only on an archive Verify has accepted: skipped records are not checked.
func (ar *Reader) NextUnless(skip func(path string) bool) (rec znode.Record, skipped bool, err error) {
	line, err := ar.NextLine()
	if err != nil {
		return znode.Record{}, false, err
	}
	return DecodeLine(line, ar.count, skip)
}

// leadingPath reads the path off a line that starts `{"path":"...",` without escapes.
func leadingPath(line []byte) (string, bool) {
	const prefix = `{"path":"`
	rest, ok := bytes.CutPrefix(line, []byte(prefix))
	if !ok {
		return "", false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return "", false
	}
	return string(rest[:i]), true
}
