package storage

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
)

// putReader is the body every Put reads: it stops at cancellation and fails when r yields
// more or fewer bytes than declared, so a short stream never becomes an object.
type putReader struct {
	ctx  context.Context
	r    io.Reader
	size int64 // -1 when unknown
	n    int64
}

func (p *putReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.size >= 0 {
		if p.n > p.size {
			return n, fmt.Errorf("reader yielded more than the declared %d bytes", p.size)
		}
		if err == io.EOF && p.n < p.size {
			return n, fmt.Errorf("reader yielded %d of the declared %d bytes: %w", p.n, p.size, io.ErrUnexpectedEOF)
		}
	}
	return n, err
}

// probePrefix names CheckWritable's probe objects.
const probePrefix = ".write-probe-"

// checkWritable is CheckWritable for any Store: a real Put and Delete, so it exercises the
// same permissions (s3:PutObject, s3:DeleteObject) and the same code as a backup.
func checkWritable(ctx context.Context, s Store) error {
	key := probePrefix + rand.Text()
	const body = "pulsar-metadata-backup write probe\n"
	if err := s.Put(ctx, key, strings.NewReader(body), int64(len(body))); err != nil {
		return fmt.Errorf("check %s is writable: %w", s.URL(""), err)
	}
	if err := s.Delete(ctx, key); err != nil {
		return fmt.Errorf("check %s is writable: %w", s.URL(""), err)
	}
	return nil
}
