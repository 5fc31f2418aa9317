package cloudkeys

import (
	"bytes"
	"context"
	"fmt"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lacre/lacre/internal/cli/cloudproto"
)

// Uploader stores published files in S3 and GCS, with the SDKs' default
// credentials and settings, as sops's publish does (AWS_*, including
// AWS_ENDPOINT_URL; Application Default Credentials, STORAGE_EMULATOR_HOST).
type Uploader struct{}

var _ cloudproto.Uploader = Uploader{}

// Upload implements cloudproto.Uploader.
func (Uploader) Upload(ctx context.Context, o cloudproto.Object, data []byte) error {
	switch o.Kind {
	case "s3":
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("s3: loading the AWS configuration: %v", err)
		}
		_, err = s3.NewFromConfig(cfg).PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(o.Bucket), Key: aws.String(o.Key), Body: bytes.NewReader(data),
		})
		if err != nil {
			return fmt.Errorf("s3: uploading to %s: %v", o, err)
		}
		return nil
	case "gcs":
		c, err := storage.NewClient(ctx)
		if err != nil {
			return fmt.Errorf("gcs: %v", err)
		}
		defer c.Close()
		w := c.Bucket(o.Bucket).Object(o.Key).NewWriter(ctx)
		w.ChunkSize = 0 // one request: published files are small
		if _, err := w.Write(data); err != nil {
			w.Close()
			return fmt.Errorf("gcs: uploading to %s: %v", o, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("gcs: uploading to %s: %v", o, err)
		}
		return nil
	}
	return fmt.Errorf("unknown destination kind %q", o.Kind)
}
