package testenv

import (
	"context"
	"fmt"
	"net/http"
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

func makeBucket(ctx context.Context, endpoint, access, secret, name string) error {
	_, err := newS3Client(endpoint, access, secret).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
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
