//lint:file-ignore SA1019 feature/s3/manager is deprecated in favour of feature/s3/transfermanager; its Uploader is still what this package is specified and tested against.

package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Options says how to reach an S3-compatible server. Credentials are deliberately not
// among them: they come only from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, the shared config and credentials files, or an IAM role), so they
// are never in flags, configuration files of this tool, logs or errors.
type S3Options struct {
	// Endpoint is the server's base URL, such as http://minio:9000; empty for AWS S3.
	Endpoint string
	// Region is the bucket's region; empty takes the SDK's (AWS_REGION or the profile),
	// then us-east-1.
	Region string
	// ForcePathStyle addresses a bucket as endpoint/bucket rather than bucket.endpoint, as
	// MinIO and most other S3-compatible servers need.
	ForcePathStyle bool
	// ServerSideEncryption is sent with every upload, multipart ones included (the
	// x-amz-server-side-encryption header): "" (the bucket's default), SSEAES256 (keys the
	// store manages, SSE-S3) or SSEKMS (a KMS key, SSE-KMS).
	ServerSideEncryption string
	// KMSKeyID is the KMS key of SSEKMS uploads (x-amz-server-side-encryption-aws-kms-key-id);
	// empty takes the store's default key.
	KMSKeyID string
}

// Values of S3Options.ServerSideEncryption.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

const (
	// Each Put holds at most about partConcurrency+2 parts in memory (the manager's buffer
	// pool plus the first part), whatever the object size.
	// Unknown-size streams can therefore be up to partSize*10000 (156 GiB) long.
	partSize        = 16 << 20
	partConcurrency = 3

	// Every request is retried by the SDK's standard retryer (throttling, 5xx, connection
	// errors) at most maxAttempts times; its backoff starts at 50 ms (1 s when throttled),
	// so a refused connection fails a call in about a second. Retrying longer is the
	// caller's (Temporal's) decision. A host that drops packets costs dialTimeout per try.
	maxAttempts = 5
	dialTimeout = 5 * time.Second
	// A server that accepts the connection but never answers fails the attempt instead of
	// hanging it.
	responseHeaderTimeout = time.Minute
	// Aborting a failed multipart upload runs even when the caller's ctx is cancelled, and
	// keeps trying for abortTimeout, so an outage shorter than that leaves no parts behind.
	abortTimeout    = 10 * time.Second
	abortRetryDelay = time.Second
)

type s3Store struct {
	loc      Location
	client   *s3.Client
	uploader *manager.Uploader
	sse      string
	kmsKeyID string
}

// NewS3 returns a Store for an s3:// or s3a:// location. It fetches credentials from the
// default chain, failing with ErrAccessDenied if there are none, but does not contact the
// server; CheckWritable does.
func NewS3(ctx context.Context, loc Location, opts S3Options) (Store, error) {
	if (loc.Scheme != "s3" && loc.Scheme != "s3a") || loc.Bucket == "" {
		return nil, fmt.Errorf("S3 store for %q: want an s3a:// or s3:// location with a bucket", loc.String())
	}
	switch opts.ServerSideEncryption {
	case "", SSEAES256:
		if opts.KMSKeyID != "" {
			return nil, fmt.Errorf("S3 store for %s: a KMS key is only used with server-side encryption %s", loc, SSEKMS)
		}
	case SSEKMS:
	default:
		return nil, fmt.Errorf("S3 store for %s: server-side encryption %q: want %s or %s", loc, opts.ServerSideEncryption, SSEAES256, SSEKMS)
	}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("S3 endpoint %q: want http://host[:port] or https://host[:port]", redact(opts.Endpoint))
		}
	}
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(t *http.Transport) { t.ResponseHeaderTimeout = responseHeaderTimeout })
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = maxAttempts })
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("S3 store for %s: load AWS configuration: %w", loc, err)
	}
	// Fail here, with a message that says so, rather than on the first request with the
	// last provider's complaint (often "no EC2 IMDS role found").
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("S3 store for %s: %w: no AWS credentials (from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a shared profile or an IAM role): %s",
			loc, ErrAccessDenied, oneLine(err.Error()))
	}
	switch {
	case opts.Region != "":
		cfg.Region = opts.Region
	case cfg.Region == "":
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.ForcePathStyle
		// Objects uploaded in parts have no whole-object checksum to validate on Get; the
		// SDK would log that on every read. Integrity is the archive's SHA-256.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = partConcurrency
		// The manager would abort with the caller's ctx, which does nothing once ctx is
		// cancelled, and drop the abort's error; Put aborts itself instead.
		u.LeavePartsOnError = true
	})
	return &s3Store{loc: loc, client: client, uploader: uploader, sse: opts.ServerSideEncryption, kmsKeyID: opts.KMSKeyID}, nil
}

func (s *s3Store) URL(key string) string { return s.loc.URL(key) }

// objectKey is key under the location's prefix.
func (s *s3Store) objectKey(key string) string {
	if s.loc.Prefix == "" {
		return key
	}
	return s.loc.Prefix + "/" + key
}

func (s *s3Store) fail(op, key string, err error) error {
	return opError(op, s.URL(key), s3Kind(err), &shortError{msg: shortCause(err), err: err})
}

func (s *s3Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	const op = "put"
	if err := checkKey(key); err != nil {
		return opError(op, s.URL(key), nil, fmt.Errorf("key %w", err))
	}
	in := &s3.PutObjectInput{
		Bucket: aws.String(s.loc.Bucket),
		Key:    aws.String(s.objectKey(key)),
		Body:   &putReader{ctx: ctx, r: r, size: size},
	}
	// The uploader copies these into CreateMultipartUpload when the object goes in parts:
	// every upload, single or multipart, asks for the same encryption.
	if s.sse != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(s.sse)
	}
	if s.kmsKeyID != "" {
		in.SSEKMSKeyId = aws.String(s.kmsKeyID)
	}
	_, err := s.uploader.Upload(ctx, in, func(u *manager.Uploader) {
		if size > partSize*9000 { // keep clear of S3's 10000-part limit
			u.PartSize = size/9000 + 1
		}
	})
	if err == nil {
		return nil
	}
	var mu manager.MultiUploadFailure
	if errors.As(err, &mu) && mu.UploadID() != "" {
		if aerr := s.abortUpload(ctx, in, mu.UploadID()); aerr != nil {
			return opError(op, s.URL(key), s3Kind(err), &shortError{
				msg: fmt.Sprintf("%s; abort of multipart upload %s failed too, its parts stay (invisible) until a lifecycle rule removes them: %s",
					shortCause(err), mu.UploadID(), shortCause(aerr)),
				err: err,
			})
		}
	}
	return s.fail(op, key, err)
}

// abortUpload removes a failed multipart upload's parts. It runs on a context of its own,
// since the caller's may be what was cancelled, and tries again while the server cannot be
// reached; an answer from the server ends it.
func (s *s3Store) abortUpload(ctx context.Context, in *s3.PutObjectInput, uploadID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	var last error // the last failure that says more than "deadline exceeded"
	for {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: in.Bucket, Key: in.Key, UploadId: aws.String(uploadID),
		})
		var apiErr smithy.APIError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &apiErr):
			if apiErr.ErrorCode() == "NoSuchUpload" {
				return nil
			}
			return err
		case last == nil || ctx.Err() == nil:
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(abortRetryDelay):
		}
	}
}

// Get streams the object; ctx must stay live until the body is read and closed.
func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, opError("get", s.URL(key), nil, fmt.Errorf("key %w", err))
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.loc.Bucket), Key: aws.String(s.objectKey(key)),
	})
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	return out.Body, nil
}

func (s *s3Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	return s.stat(ctx, "stat", key)
}

func (s *s3Store) stat(ctx context.Context, op, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, opError(op, s.URL(key), nil, fmt.Errorf("key %w", err))
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.loc.Bucket), Key: aws.String(s.objectKey(key)),
	})
	if err != nil {
		err = s.fail(op, key, err)
		// A HEAD response has no body, so a missing bucket looks like a missing key.
		if errors.Is(err, ErrNotExist) {
			_, berr := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.loc.Bucket)})
			if k := s3Kind(berr); k == ErrNotExist || k == ErrBucketNotFound {
				return ObjectInfo{}, opError(op, s.URL(key), ErrBucketNotFound, nil)
			}
		}
		return ObjectInfo{}, err
	}
	return ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Delete checks the object exists first: S3 deletes absent keys without complaint, and the
// contract promises ErrNotExist.
func (s *s3Store) Delete(ctx context.Context, key string) error {
	const op = "delete"
	if _, err := s.stat(ctx, op, key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.loc.Bucket), Key: aws.String(s.objectKey(key)),
	})
	if err != nil {
		return s.fail(op, key, err)
	}
	return nil
}

func (s *s3Store) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	const op = "list"
	if err := checkPrefix(prefix); err != nil {
		return opError(op, s.URL(prefix), nil, err)
	}
	base := ""
	if s.loc.Prefix != "" {
		base = s.loc.Prefix + "/"
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.loc.Bucket), Prefix: aws.String(base + prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return s.fail(op, prefix, err)
		}
		for _, o := range page.Contents {
			info := ObjectInfo{
				Key:     strings.TrimPrefix(aws.ToString(o.Key), base),
				Size:    aws.ToInt64(o.Size),
				ModTime: aws.ToTime(o.LastModified),
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *s3Store) CheckWritable(ctx context.Context) error { return checkWritable(ctx, s) }

// s3Kind maps an SDK error to the package's sentinels, or nil.
func s3Kind(err error) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return nil
	}
	switch apiErr.ErrorCode() {
	case "NoSuchBucket":
		return ErrBucketNotFound
	case "NoSuchKey", "NotFound": // NotFound: HEAD responses carry no error code
		return ErrNotExist
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden",
		"ExpiredToken", "InvalidToken", "AllAccessDisabled":
		return ErrAccessDenied
	}
	return nil
}

// shortCause is the part of an SDK error a person needs, on one line: the S3 error code and
// message, or the network error, without the SDK's request IDs and operation chain.
func shortCause(err error) string {
	var msg string
	var apiErr smithy.APIError
	var netErr *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		msg = context.Canceled.Error()
	case errors.Is(err, context.DeadlineExceeded):
		msg = context.DeadlineExceeded.Error()
	case errors.As(err, &apiErr):
		msg = apiErr.ErrorCode()
		if m := apiErr.ErrorMessage(); m != "" && m != msg {
			msg += ": " + m
		}
	case errors.As(err, &netErr):
		msg = netErr.Error()
	default:
		// Peel the outer wrappers that only repeat the S3 operation and the upload ID.
		if mu, ok := err.(manager.MultiUploadFailure); ok && errors.Unwrap(mu) != nil {
			err = errors.Unwrap(mu)
		}
		if opErr, ok := err.(*smithy.OperationError); ok {
			err = opErr.Err
		}
		msg = err.Error()
	}
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		msg = fmt.Sprintf("gave up after %d attempts: %s", maxErr.Attempt, msg)
	}
	return oneLine(msg)
}

// shortError shows only msg but keeps the SDK error in the chain for errors.Is and As.
type shortError struct {
	msg string
	err error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() error { return e.err }
