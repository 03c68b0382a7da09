package storage

import (
	"context"
	"fmt"
)

// Open parses a bucket URL and returns the Store for its scheme: NewS3 for s3a:// and
// s3://, NewLocal for file://. opts apply to S3 only.
func Open(ctx context.Context, rawURL string, opts S3Options) (Store, error) {
	loc, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch loc.Scheme {
	case "s3a", "s3":
		return NewS3(ctx, loc, opts)
	case "file":
		return NewLocal(loc)
	}
	return nil, fmt.Errorf("bucket URL %q: no store for scheme %q", loc, loc.Scheme)
}
