package storage

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
)

// Location is a parsed bucket URL: where a Store keeps its objects.
type Location struct {
	// Scheme is "s3a", "s3" or "file", lower case.
	Scheme string
	// Bucket is the S3 bucket name; empty for file.
	Bucket string
	// Prefix is the S3 key prefix every key is stored under, without a leading or trailing
	// slash; empty for the bucket root and for file.
	Prefix string
	// Dir is the absolute, cleaned directory of a file URL; empty for S3.
	Dir string
}

// ParseURL parses a bucket URL: s3a://bucket[/prefix], s3://bucket[/prefix] or
// file:///absolute/dir. s3a (Hadoop's name, used in Pulsar's configuration) and s3 mean the
// same thing. Errors are one line and never repeat credentials embedded in raw.
func ParseURL(raw string) (Location, error) {
	return parseURL(raw, "bucket URL")
}

func parseURL(raw, what string) (Location, error) {
	fail := func(problem string) (Location, error) {
		return Location{}, fmt.Errorf("%s %q: %s", what, redact(raw), problem)
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return fail("contains a control character")
		}
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return fail("want s3a://bucket[/prefix], s3://bucket[/prefix] or file:///absolute/dir")
	}
	scheme = strings.ToLower(scheme)
	if strings.ContainsAny(rest, "?#") {
		return fail("query and fragment are not allowed")
	}
	switch scheme {
	case "s3a", "s3":
		bucket, prefix, _ := strings.Cut(rest, "/")
		if strings.Contains(bucket, "@") {
			return fail("credentials do not belong in the URL; they come from the AWS environment, profile or role")
		}
		if err := checkBucketName(bucket); err != nil {
			return fail(err.Error())
		}
		prefix = strings.TrimSuffix(prefix, "/")
		if prefix != "" {
			if err := checkKey(prefix); err != nil {
				return fail("prefix " + err.Error())
			}
		}
		return Location{Scheme: scheme, Bucket: bucket, Prefix: prefix}, nil
	case "file":
		if rest == "" {
			return fail("missing directory")
		}
		if !strings.HasPrefix(rest, "/") {
			return fail("relative path or a host; write file:///absolute/dir")
		}
		if p := strings.TrimSuffix(rest[1:], "/"); p != "" {
			if err := checkKey(p); err != nil {
				return fail("path " + err.Error())
			}
		}
		return Location{Scheme: scheme, Dir: path.Clean(rest)}, nil
	default:
		return fail("scheme must be s3a, s3 or file")
	}
}

// SplitObjectURL parses the URL of one object, such as
// s3a://my-bucket/pulsar-backup-1623721488825.tar.gz, into the Location of the directory it
// is in and its key: the last path segment is the key, everything before it the bucket URL.
func SplitObjectURL(raw string) (Location, string, error) {
	const what = "object URL"
	if strings.HasSuffix(raw, "/") {
		return Location{}, "", fmt.Errorf("%s %q: ends with '/', not an object", what, redact(raw))
	}
	loc, err := parseURL(raw, what)
	if err != nil {
		return Location{}, "", err
	}
	var key string
	if loc.Scheme == "file" { // Dir is not "/": raw does not end with a slash
		loc.Dir, key = path.Split(loc.Dir)
		loc.Dir = path.Clean(loc.Dir)
		return loc, key, nil
	}
	if loc.Prefix == "" {
		return Location{}, "", fmt.Errorf("%s %q: no object key after the bucket", what, redact(raw))
	}
	if i := strings.LastIndex(loc.Prefix, "/"); i >= 0 {
		loc.Prefix, key = loc.Prefix[:i], loc.Prefix[i+1:]
	} else {
		loc.Prefix, key = "", loc.Prefix
	}
	return loc, key, nil
}

// URL renders key under the location with the scheme it was parsed with; an empty key gives
// the bucket URL itself.
func (l Location) URL(key string) string {
	if l.Scheme == "file" {
		// Not path.Join: a rejected key such as "../x" must show in errors as given.
		switch {
		case key == "":
			return "file://" + l.Dir
		case l.Dir == "/":
			return "file:///" + key
		}
		return "file://" + l.Dir + "/" + key
	}
	u := l.Scheme + "://" + l.Bucket
	if l.Prefix != "" {
		u += "/" + l.Prefix
	}
	if key != "" {
		u += "/" + key
	}
	return u
}

// String is the bucket URL.
func (l Location) String() string { return l.URL("") }

// checkBucketName applies the S3 naming rules for general purpose buckets, so a typo fails
// here with a clear message instead of as an opaque error from the server.
func checkBucketName(b string) error {
	if b == "" {
		return fmt.Errorf("empty bucket name")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name must be 3 to 63 characters long")
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return fmt.Errorf("bucket name may contain only lower-case letters, digits, '.' and '-'")
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("bucket name must begin and end with a letter or digit")
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket name must not contain two adjacent periods")
	}
	if _, err := netip.ParseAddr(b); err == nil {
		return fmt.Errorf("bucket name must not be an IP address")
	}
	for _, p := range []string{"xn--", "sthree-"} {
		if strings.HasPrefix(b, p) {
			return fmt.Errorf("bucket name must not start with %q", p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3"} {
		if strings.HasSuffix(b, s) {
			return fmt.Errorf("bucket name must not end with %q", s)
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// CheckKey reports whether key is one a Store accepts (see checkKey), for callers that
// take keys from users and must tell a bad one from a missing one.
func CheckKey(key string) error { return checkKey(key) }

// checkKey accepts a relative, '/'-separated key (or prefix) that cannot escape the bucket
// prefix or the local root: no leading slash, no empty, "." or ".." segments, no backslash,
// no control characters.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("is empty")
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%q must be relative", key)
	}
	if strings.ContainsRune(key, '\\') {
		return fmt.Errorf("%q contains a backslash", key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q contains a control character", key)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%q has an empty path segment", key)
		case ".", "..":
			return fmt.Errorf("%q has a %q path segment", key, seg)
		}
	}
	return nil
}

// redact hides userinfo (user:secret@) in a URL that is about to go into an error message.
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority, tail, hasTail := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		authority = "REDACTED@" + authority[at+1:]
	}
	if hasTail {
		return scheme + "://" + authority + "/" + tail
	}
	return scheme + "://" + authority
}

// checkPrefix accepts a List prefix: "" or any string that a valid key can start with.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	// "a/" and "a/.." are fine prefixes ("a/b", "a/..x"); "a/../" and "../" are not.
	if err := checkKey(prefix + "x"); err != nil {
		return fmt.Errorf("prefix %q is not the start of a valid key", prefix)
	}
	return nil
}
