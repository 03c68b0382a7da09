package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
)

var bucketSeq atomic.Int64

// openS3 opens rawURL on m with the credentials the default chain finds in the environment.
func openS3(t *testing.T, m *testenv.MinIO, rawURL string) Store {
	t.Helper()
	s, err := Open(context.Background(), rawURL, S3Options{Endpoint: m.Endpoint, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// s3Fixture returns fixtures on fresh buckets of m, with keys under prefix if it is not "".
func s3Fixture(m *testenv.MinIO, prefix string) func(t *testing.T) fixture {
	return func(t *testing.T) fixture {
		bucket := fmt.Sprintf("contract-%d", bucketSeq.Add(1))
		m.MakeBucket(bucket)
		s := openS3(t, m, strings.TrimSuffix("s3a://"+bucket+"/"+prefix, "/"))
		return fixture{Store: s, leftovers: func(t *testing.T, key string) []string {
			return multipartUploads(t, m, bucket, s.(*s3Store).objectKey(key))
		}}
	}
}

// multipartUploads lists the incomplete multipart uploads for exactly key.
func multipartUploads(t *testing.T, m *testenv.MinIO, bucket, key string) []string {
	t.Helper()
	out, err := m.S3Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket), Prefix: aws.String(key),
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) == key {
			ids = append(ids, aws.ToString(u.Key)+" upload "+aws.ToString(u.UploadId))
		}
	}
	return ids
}

func TestS3(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.SetEnv(t)
	ctx := context.Background()

	t.Run("Contract", func(t *testing.T) { testStoreContract(t, s3Fixture(m, "")) })
	t.Run("ContractUnderPrefix", func(t *testing.T) { testStoreContract(t, s3Fixture(m, "some/prefix/")) })

	t.Run("PrefixIsolation", func(t *testing.T) {
		m.MakeBucket("prefixed")
		raw := m.S3Client()
		// Not "some/prefix" itself: MinIO cannot hold both an object and a prefix of one name.
		for _, k := range []string{"other/x", "some/prefixed", "some/prefix-not"} {
			if _, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("prefixed"), Key: aws.String(k), Body: strings.NewReader("outside")}); err != nil {
				t.Fatal(err)
			}
		}
		s := openS3(t, m, "s3a://prefixed/some/prefix")
		put(t, s, "k", "inside")
		if _, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("prefixed"), Key: aws.String("some/prefix/k")}); err != nil {
			t.Errorf("object not stored at some/prefix/k: %v", err)
		}
		var keys []string
		_ = s.List(ctx, "", func(o ObjectInfo) error { keys = append(keys, o.Key); return nil })
		if len(keys) != 1 || keys[0] != "k" {
			t.Errorf("List under the prefix = %q; want [k]", keys)
		}
		if got := s.URL("k"); got != "s3a://prefixed/some/prefix/k" {
			t.Errorf("URL = %q", got)
		}
	})

	t.Run("MissingBucket", func(t *testing.T) {
		s := openS3(t, m, "s3a://no-such-bucket/p")
		wantKind(t, "CheckWritable", s.CheckWritable(ctx), ErrBucketNotFound, "s3a://no-such-bucket/p")
		err := s.Put(ctx, "k", strings.NewReader("x"), 1)
		wantKind(t, "Put", err, ErrBucketNotFound, "s3a://no-such-bucket/p/k")
		if !strings.HasPrefix(err.Error(), "put s3a://no-such-bucket/p/k: bucket does not exist: NoSuchBucket") {
			t.Errorf("error reads %q", err)
		}
		err = s.Put(ctx, "big", generate(1, 20*MiB), -1)
		wantKind(t, "multipart Put", err, ErrBucketNotFound, "s3a://no-such-bucket/p/big")
		_, err = s.Get(ctx, "k")
		wantKind(t, "Get", err, ErrBucketNotFound, "s3a://no-such-bucket/p/k")
		_, err = s.Stat(ctx, "k")
		wantKind(t, "Stat", err, ErrBucketNotFound, "s3a://no-such-bucket/p/k")
		err = s.List(ctx, "", func(ObjectInfo) error { return nil })
		wantKind(t, "List", err, ErrBucketNotFound, "s3a://no-such-bucket/p")
	})

	t.Run("NoCredentials", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		_, err := Open(ctx, "s3a://guarded", S3Options{Endpoint: m.Endpoint, ForcePathStyle: true})
		wantKind(t, "Open", err, ErrAccessDenied, "s3a://guarded")
		if err != nil && !strings.Contains(err.Error(), "no AWS credentials") {
			t.Errorf("error does not say credentials are missing: %v", err)
		}
	})

	t.Run("WrongCredentials", func(t *testing.T) {
		m.MakeBucket("guarded")
		for name, env := range map[string][2]string{
			"secret":     {m.AccessKey, "wrong-secret-d0n7-l34k"},
			"access key": {"no-such-access-key", m.SecretKey},
		} {
			t.Setenv("AWS_ACCESS_KEY_ID", env[0])
			t.Setenv("AWS_SECRET_ACCESS_KEY", env[1])
			s := openS3(t, m, "s3a://guarded")
			errs := []error{s.CheckWritable(ctx), s.Put(ctx, "k", strings.NewReader("x"), 1)}
			_, err := s.Get(ctx, "k")
			errs = append(errs, err)
			_, err = s.Stat(ctx, "k")
			errs = append(errs, err)
			for _, err := range errs {
				wantKind(t, "wrong "+name, err, ErrAccessDenied, "s3a://guarded")
				if err != nil && (strings.Contains(err.Error(), env[1]) || strings.Contains(err.Error(), m.SecretKey)) {
					t.Errorf("wrong %s: the error shows a secret: %s", name, err)
				}
			}
		}
	})
}

// An unreachable server fails a call within seconds instead of retrying for minutes.
func TestS3ServerDown(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.SetEnv(t)
	s := openS3(t, m, "s3a://any-bucket")
	m.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for name, call := range map[string]func() error{
		"CheckWritable": func() error { return s.CheckWritable(ctx) },
		"Stat":          func() error { _, err := s.Stat(ctx, "k"); return err },
	} {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s with the server down = %v; want connection refused", name, err)
		}
		if took > 15*time.Second {
			t.Errorf("%s took %s to fail", name, took)
		}
		t.Logf("%s failed after %s: %v", name, took.Round(time.Millisecond), err)
	}
}

// MinIO dies in the middle of a multipart upload: Put fails in bounded time, and after the
// server is back no object is visible under the key. If the server is back within Put's
// abort window no parts remain either; if not, the error names the upload left behind.
func TestS3KilledMidUpload(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.SetEnv(t)
	m.MakeBucket("backups")
	s := openS3(t, m, "s3a://backups")
	ctx := context.Background()

	// killMidUpload starts a 40 MiB Put of key, kills MinIO once part 1 is stored, lets the
	// stream go on, runs whileDown, and returns Put's error.
	killMidUpload := func(t *testing.T, key string, whileDown func()) error {
		gate := &gatedReader{r: generate(6, 40*MiB), after: 20 * MiB, reached: make(chan struct{}), open: make(chan struct{})}
		done := make(chan error, 1)
		go func() { done <- s.Put(ctx, key, gate, -1) }()
		<-gate.reached
		deadline := time.Now().Add(30 * time.Second)
		for !hasUploadedPart(ctx, m.S3Client(), "backups", key) {
			if time.Now().After(deadline) {
				t.Fatal("part 1 never arrived")
			}
			time.Sleep(50 * time.Millisecond)
		}
		m.Kill()
		killed := time.Now()
		gate.release()
		whileDown()
		select {
		case err := <-done:
			t.Logf("Put failed %s after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
			if err == nil || !strings.HasPrefix(err.Error(), "put s3a://backups/"+key+": ") {
				t.Fatalf("Put = %v", err)
			}
			if took := time.Since(killed); took > 20*time.Second {
				t.Errorf("Put took %s to fail", took)
			}
			return err
		case <-time.After(time.Minute):
			t.Fatal("Put still running a minute after the server died")
			return nil
		}
	}

	t.Run("BackDuringAbort", func(t *testing.T) {
		const key = "pulsar-backup-1.tar.gz"
		putErr := killMidUpload(t, key, func() {
			// The part uploads give up within a second (SDK backoff 50 ms, doubling, 5 tries);
			// the abort keeps trying for abortTimeout.
			time.Sleep(2 * time.Second)
			m.Restart()
		})
		if strings.Contains(putErr.Error(), "abort") {
			t.Errorf("the abort failed although the server came back: %v", putErr)
		}
		_, err := s.Stat(ctx, key)
		wantKind(t, "Stat after restart", err, ErrNotExist, "s3a://backups/"+key)
		if l := multipartUploads(t, m, "backups", key); len(l) > 0 {
			t.Errorf("parts left behind: %q", l)
		}
	})

	t.Run("StaysDown", func(t *testing.T) {
		const key = "pulsar-backup-2.tar.gz"
		putErr := killMidUpload(t, key, func() {})
		m.Restart()
		_, err := s.Stat(ctx, key)
		wantKind(t, "Stat after restart", err, ErrNotExist, "s3a://backups/"+key)
		wantEmpty(t, s)
		// The abort could not reach a dead server, so the parts remain; the error must have
		// said which upload, so someone can find it.
		left := multipartUploads(t, m, "backups", key)
		for _, u := range left {
			id := u[strings.LastIndex(u, " ")+1:]
			if !strings.Contains(putErr.Error(), "abort of multipart upload "+id+" failed") {
				t.Errorf("leftover %s not reported by Put's error: %v", u, putErr)
			}
		}
		t.Logf("left behind, as reported: %q", left)
	})
}

func hasUploadedPart(ctx context.Context, c *s3.Client, bucket, key string) bool {
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		return false
	}
	for _, u := range ups.Uploads {
		parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
		if err == nil && len(parts.Parts) > 0 {
			return true
		}
	}
	return false
}

// gatedReader yields after bytes, signals reached, and waits for release before the rest.
type gatedReader struct {
	r       io.Reader
	after   int64
	n       int64
	reached chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.n >= g.after {
		g.once.Do(func() { close(g.reached) })
		<-g.open
	} else if rem := g.after - g.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

func (g *gatedReader) release() { close(g.open) }

// Server-side encryption against MinIO's built-in KMS: every upload, a single PUT and a
// multipart one alike, asks for it, and HeadObject shows it on the object; reads decrypt.
func TestS3ServerSideEncryption(t *testing.T) {
	m := testenv.StartMinIO(t, testenv.WithKMSKey("backup-key"))
	m.SetEnv(t)
	m.MakeBucket("sse")
	ctx := context.Background()
	raw := m.S3Client()
	open := func(t *testing.T, prefix string, o S3Options) Store {
		t.Helper()
		o.Endpoint, o.ForcePathStyle = m.Endpoint, true
		s, err := Open(ctx, "s3a://sse/"+prefix, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	head := func(t *testing.T, key string) *s3.HeadObjectOutput {
		t.Helper()
		out, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sse"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	big := func() io.Reader { return generate(7, partSize+MiB) }
	for _, tc := range []struct {
		name, sse, key, wantKey string
	}{
		{"sse-s3", SSEAES256, "", ""},
		{"sse-kms with a key", SSEKMS, "backup-key", "backup-key"},
		{"sse-kms default key", SSEKMS, "", "backup-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := strings.ReplaceAll(tc.name, " ", "-")
			s := open(t, prefix, S3Options{ServerSideEncryption: tc.sse, KMSKeyID: tc.key})
			if err := s.CheckWritable(ctx); err != nil {
				t.Fatal(err)
			}
			put(t, s, "small", "encrypted at rest")
			if err := s.Put(ctx, "big", big(), partSize+MiB); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"small", "big"} {
				h := head(t, prefix+"/"+k)
				if string(h.ServerSideEncryption) != tc.sse {
					t.Errorf("%s: x-amz-server-side-encryption %q, want %q", k, h.ServerSideEncryption, tc.sse)
				}
				// MinIO names its key as an ARN: arn:aws:kms:<name>.
				if got := strings.TrimPrefix(aws.ToString(h.SSEKMSKeyId), "arn:aws:kms:"); got != tc.wantKey {
					t.Errorf("%s: KMS key %q, want %q", k, aws.ToString(h.SSEKMSKeyId), tc.wantKey)
				}
			}
			// The big one went in parts (its ETag counts them), so the multipart path asked too.
			if etag := aws.ToString(head(t, prefix+"/big").ETag); !strings.Contains(etag, "-2") {
				t.Errorf("big object's ETag %s: not a 2-part upload", etag)
			}
			if got := getString(t, s, "small"); got != "encrypted at rest" {
				t.Errorf("read back %q", got)
			}
			r, err := s.Get(ctx, "big")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !sameStream(r, big()) {
				t.Error("the multipart object does not read back as written")
			}
		})
	}

	t.Run("without", func(t *testing.T) {
		s := open(t, "plain", S3Options{})
		put(t, s, "k", "x")
		if h := head(t, "plain/k"); h.ServerSideEncryption != "" || h.SSEKMSKeyId != nil {
			t.Errorf("unasked encryption %q %v", h.ServerSideEncryption, h.SSEKMSKeyId)
		}
	})

	t.Run("unknown KMS key", func(t *testing.T) {
		s := open(t, "nokey", S3Options{ServerSideEncryption: SSEKMS, KMSKeyID: "no-such-key"})
		err := s.CheckWritable(ctx)
		if err == nil || !strings.Contains(err.Error(), "s3a://sse/nokey") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("CheckWritable with an unknown key: %v", err)
		}
		t.Log(err)
		if err := s.Put(ctx, "big", big(), partSize+MiB); err == nil {
			t.Fatal("multipart upload with an unknown key succeeded")
		}
		if ups := multipartUploads(t, m, "sse", "nokey/big"); len(ups) != 0 {
			t.Errorf("left %v", ups)
		}
	})

	t.Run("options", func(t *testing.T) {
		for _, o := range []S3Options{{ServerSideEncryption: "aes256"}, {ServerSideEncryption: SSEAES256, KMSKeyID: "k"}, {KMSKeyID: "k"}} {
			if _, err := Open(ctx, "s3a://sse", o); err == nil {
				t.Errorf("%+v accepted", o)
			}
		}
	})
}

// sameStream compares two streams to the end.
func sameStream(a, b io.Reader) bool {
	ba, errA := io.ReadAll(a)
	bb, errB := io.ReadAll(b)
	return errA == nil && errB == nil && bytes.Equal(ba, bb)
}
