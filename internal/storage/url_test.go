package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    Location
		wantErr string // a part of the error; "" means no error
	}{
		{raw: "s3a://my-bucket", want: Location{Scheme: "s3a", Bucket: "my-bucket"}},
		{raw: "s3a://my-bucket/", want: Location{Scheme: "s3a", Bucket: "my-bucket"}},
		{raw: "s3://my.bucket-1/pulsar/prod/", want: Location{Scheme: "s3", Bucket: "my.bucket-1", Prefix: "pulsar/prod"}},
		{raw: "S3A://abc/x", want: Location{Scheme: "s3a", Bucket: "abc", Prefix: "x"}},
		{raw: "file:///var/backups", want: Location{Scheme: "file", Dir: "/var/backups"}},
		{raw: "file:///var/backups/", want: Location{Scheme: "file", Dir: "/var/backups"}},
		{raw: "file:///", want: Location{Scheme: "file", Dir: "/"}},

		{raw: "", wantErr: "want s3a://bucket"},
		{raw: "my-bucket", wantErr: "want s3a://bucket"},
		{raw: "http://x", wantErr: `bucket URL "http://x": scheme must be s3a, s3 or file`},
		{raw: "s3a://", wantErr: "empty bucket name"},
		{raw: "s3a:///prefix", wantErr: "empty bucket name"},
		{raw: "s3a://ab", wantErr: "3 to 63 characters"},
		{raw: "s3a://" + strings.Repeat("a", 64), wantErr: "3 to 63 characters"},
		{raw: "s3a://My-Bucket", wantErr: "lower-case letters"},
		{raw: "s3a://my_bucket", wantErr: "lower-case letters"},
		{raw: "s3a://-bucket", wantErr: "begin and end"},
		{raw: "s3a://bucket.", wantErr: "begin and end"},
		{raw: "s3a://my..bucket", wantErr: "two adjacent periods"},
		{raw: "s3a://192.168.1.10", wantErr: "IP address"},
		{raw: "s3a://xn--bucket", wantErr: `start with "xn--"`},
		{raw: "s3a://bucket-s3alias", wantErr: `end with "-s3alias"`},
		{raw: "s3a://bucket:9000/x", wantErr: "lower-case letters"},
		{raw: "s3a://bucket/a//b", wantErr: "empty path segment"},
		{raw: "s3a://bucket/../other", wantErr: `".." path segment`},
		{raw: "s3a://bucket/a/./b", wantErr: `"." path segment`},
		{raw: `s3a://bucket/a\b`, wantErr: "backslash"},
		{raw: "s3a://bucket/p?versionId=1", wantErr: "query and fragment"},
		{raw: "s3a://bucket/p#frag", wantErr: "query and fragment"},
		{raw: "s3a://bucket/p\n", wantErr: "control character"},
		{raw: "s3a://bucket/p\x00q", wantErr: "control character"},
		{raw: "file://relative/dir", wantErr: "relative path or a host"},
		{raw: "file://", wantErr: "missing directory"},
		{raw: "file:relative", wantErr: "want s3a://bucket"},
		{raw: "file:///var/../etc", wantErr: `".." path segment`},
	} {
		got, err := ParseURL(tc.raw)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseURL(%q): %v", tc.raw, err)
		case tc.wantErr == "" && got != tc.want:
			t.Errorf("ParseURL(%q) = %+v; want %+v", tc.raw, got, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseURL(%q) = %+v, %v; want an error containing %q", tc.raw, got, err, tc.wantErr)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("ParseURL(%q): error is not one line: %q", tc.raw, err)
		}
	}
}

// Credentials pasted into a URL are refused without being repeated in the error.
func TestParseURLHidesCredentials(t *testing.T) {
	for _, raw := range []string{
		"s3a://AKIAEXAMPLE:sup3r-s3cret@bucket/prefix",
		"s3a://AKIAEXAMPLE:sup3r-s3cret@bucket/pre fix\n",
		"http://AKIAEXAMPLE:sup3r-s3cret@bucket",
	} {
		_, err := ParseURL(raw)
		if err == nil {
			t.Fatalf("ParseURL(%q) accepted", raw)
		}
		if strings.Contains(err.Error(), "sup3r-s3cret") {
			t.Errorf("ParseURL error shows the secret: %v", err)
		}
	}
	_, err := Open(context.Background(), "s3a://bucket", S3Options{Endpoint: "http://key:sup3r-s3cret@host:9000/%zz"})
	if err == nil || strings.Contains(err.Error(), "sup3r-s3cret") {
		t.Errorf("Open with credentials in the endpoint = %v", err)
	}
}

func TestURLRoundTrip(t *testing.T) {
	for _, raw := range []string{"s3a://my-bucket", "s3://my-bucket/a/b", "s3a://my-bucket/prefix", "file:///var/backups", "file:///"} {
		loc, err := ParseURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := loc.String(); got != raw {
			t.Errorf("ParseURL(%q).String() = %q", raw, got)
		}
	}
	loc, _ := ParseURL("s3a://my-bucket/prefix/")
	if got := loc.URL("x/y.tar.gz"); got != "s3a://my-bucket/prefix/x/y.tar.gz" {
		t.Errorf("URL = %q", got)
	}
	loc, _ = ParseURL("file:///")
	if got := loc.URL("k"); got != "file:///k" {
		t.Errorf("URL = %q", got)
	}
}

func TestSplitObjectURL(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    Location
		key     string
		wantErr string
	}{
		{raw: "s3a://my-bucket/pulsar-backup-1623721488825.tar.gz", want: Location{Scheme: "s3a", Bucket: "my-bucket"}, key: "pulsar-backup-1623721488825.tar.gz"},
		{raw: "s3://my-bucket/a/b/backup.tar.gz", want: Location{Scheme: "s3", Bucket: "my-bucket", Prefix: "a/b"}, key: "backup.tar.gz"},
		{raw: "file:///var/backups/backup.tar.gz", want: Location{Scheme: "file", Dir: "/var/backups"}, key: "backup.tar.gz"},
		{raw: "file:///backup.tar.gz", want: Location{Scheme: "file", Dir: "/"}, key: "backup.tar.gz"},

		{raw: "s3a://my-bucket", wantErr: "no object key"},
		{raw: "s3a://my-bucket/", wantErr: "not an object"},
		{raw: "s3a://my-bucket/dir/", wantErr: "not an object"},
		{raw: "s3a://my-bucket/..", wantErr: `".." path segment`},
		{raw: "s3a://My-Bucket/k", wantErr: `object URL "s3a://My-Bucket/k": bucket name`},
		{raw: "file:///", wantErr: "not an object"},
		{raw: "file:///var/..", wantErr: `".." path segment`},
		{raw: "ftp://host/k", wantErr: "scheme must be"},
	} {
		loc, key, err := SplitObjectURL(tc.raw)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("SplitObjectURL(%q): %v", tc.raw, err)
		case tc.wantErr == "" && (loc != tc.want || key != tc.key):
			t.Errorf("SplitObjectURL(%q) = %+v, %q; want %+v, %q", tc.raw, loc, key, tc.want, tc.key)
		case tc.wantErr == "" && loc.URL(key) != tc.raw:
			t.Errorf("SplitObjectURL(%q) renders back as %q", tc.raw, loc.URL(key))
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("SplitObjectURL(%q) = %+v, %q, %v; want an error containing %q", tc.raw, loc, key, err, tc.wantErr)
		}
	}
}

func TestOpenPicksStoreByScheme(t *testing.T) {
	ctx := context.Background()
	t.Setenv("AWS_ACCESS_KEY_ID", "test-access")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for raw, want := range map[string]string{"s3a://bucket/p": "*storage.s3Store", "s3://bucket": "*storage.s3Store", "file:///tmp": "*storage.localStore"} {
		s, err := Open(ctx, raw, S3Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		if got := fmt.Sprintf("%T", s); got != want || s.URL("") != raw {
			t.Errorf("Open(%q) = %s at %s; want %s", raw, got, s.URL(""), want)
		}
	}
	for _, endpoint := range []string{"minio:9000", "ftp://minio", "http://"} {
		if _, err := Open(ctx, "s3a://bucket", S3Options{Endpoint: endpoint}); err == nil {
			t.Errorf("endpoint %q accepted", endpoint)
		}
	}
	if _, err := Open(ctx, "gs://bucket", S3Options{}); err == nil {
		t.Error("gs:// accepted")
	}
}
