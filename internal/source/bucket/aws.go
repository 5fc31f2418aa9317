package bucket

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
)

// AWSCredentials resolves credentials with the AWS SDK's default chain
// (environment, shared files, web identity, ECS, EC2 instance metadata),
// as Flux's 'aws' Bucket provider does without a secretRef. The SDK, not
// this package, reads the environment.
func AWSCredentials(ctx context.Context, region string) (*Credentials, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("AWS authentication failed: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("AWS authentication failed: no credentials provider")
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS authentication failed: %w", err)
	}
	return &Credentials{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
}
