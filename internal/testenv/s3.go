package testenv

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Client returns a plain SDK client for this server's root credentials, for tests that
// inspect or tamper with the bucket behind the code under test.
func (m *MinIO) S3Client() *s3.Client {
	return newS3Client(m.Endpoint, m.AccessKey, m.SecretKey)
}

func newS3Client(endpoint, access, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(access, secret, ""),
	})
}

// makeBucket creates a bucket. A MinIO that answers ready may still say "Server not
// initialized yet" (503) for a moment on a loaded machine: that is waited out, up to 30 s.
func makeBucket(ctx context.Context, endpoint, access, secret, name string) error {
	client := newS3Client(endpoint, access, secret)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
		if err == nil || !strings.Contains(err.Error(), "XMinioServerNotInitialized") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitHTTP(url string, timeout time.Duration, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	return waitFor(url+" answered 200", timeout, 100*time.Millisecond, exited, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}
