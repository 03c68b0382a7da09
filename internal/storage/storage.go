// Package storage is the one interface the tool uses to keep backup archives, with an S3
// implementation (any S3-compatible store, MinIO included) and a local-directory one.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotExist is returned (wrapped) by Get, Stat and Delete when the key is absent.
var ErrNotExist = errors.New("object does not exist")

// ErrBucketNotFound is returned (wrapped) when the bucket or directory itself is absent.
// Retrying cannot fix it.
var ErrBucketNotFound = errors.New("bucket does not exist")

// ErrAccessDenied is returned (wrapped) when the credentials are wrong or lack permission.
// Retrying cannot fix it.
var ErrAccessDenied = errors.New("access denied")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store keeps objects under keys in one bucket. Keys are relative to the bucket URL's
// prefix, if it has one; URL gives the full address of a key for people to read.
//
// Contract shared by the implementations:
//   - Keys are relative and '/'-separated; a key with a leading '/', a backslash, or an
//     empty, "." or ".." segment is rejected, so no key can leave the prefix or directory.
//   - Put stores what r yields. size is the number of bytes r yields, or -1 if unknown; when
//     it is known and r yields a different number, Put fails.
//   - Put is atomic: until it returns nil, nothing is visible under key, and a failed or
//     cancelled Put leaves no object and no partial upload behind. An existing object under
//     key is replaced. (One exception, S3 only: if the server stays unreachable for the
//     ~10 s Put spends aborting a multipart upload, the upload's parts stay, invisible,
//     until a lifecycle rule removes them; the error names the upload.)
//   - Get streams the object; the caller closes the reader.
//   - List calls fn once per object whose key starts with prefix ("" for all), in lexical
//     key order; an error from fn stops the listing and is returned as is.
//   - Errors name the operation and the object URL, and wrap ErrNotExist, ErrBucketNotFound
//     or ErrAccessDenied where they apply. Secrets never appear in them.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	Delete(ctx context.Context, key string) error
	// CheckWritable verifies the bucket exists and accepts writes, by writing and deleting a
	// small probe object (.write-probe-<random>), so that a backup fails before it dumps
	// anything.
	CheckWritable(ctx context.Context) error
	// URL is the full address of key, e.g. s3a://bucket/prefix/key or file:///dir/key.
	URL(key string) string
}
