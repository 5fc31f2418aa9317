// Package clitest holds the test support shared by the CLI packages' tests:
// testscript commands and in-process runs.
package clitest

import (
	"fmt"
	"net/url"
	"os"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lacre/lacre/keys/awskms/kmstest"
	"github.com/lacre/lacre/keys/azkv/azkvtest"
	"github.com/lacre/lacre/keys/gcpkms/gcpkmstest"
)

// CloudKMS, the testscript command cloudkms, starts local AWS KMS, GCP KMS
// and Azure Key Vault servers, points the environment at them as sops's
// users would (AWS_ENDPOINT_URL, SOPS_GCP_KMS_ENDPOINT, the Azure
// environment credential, SSL_CERT_FILE) and sets AWS_ARN, GCP_KEY and
// AZURE_KEY_URL to one key of each. It also writes cloud.sops.yaml, with
// the three keys in three groups, threshold 2.
func CloudKMS(ts *testscript.TestScript, neg bool, args []string) {
	aws := kmstest.New()
	ts.Defer(aws.Close)
	ts.Setenv("AWS_ARN", aws.CreateKey("eu-west-1"))
	ts.Setenv("AWS_ENDPOINT_URL", aws.URL)
	ts.Setenv("AWS_ACCESS_KEY_ID", aws.AccessKeyID)
	ts.Setenv("AWS_SECRET_ACCESS_KEY", aws.SecretAccessKey)
	ts.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	gcp := gcpkmstest.NewTLS()
	ts.Defer(gcp.Close)
	gcp.RequireToken("gcp-test-token")
	key := "projects/lacre/locations/global/keyRings/ring/cryptoKeys/sops"
	gcp.CreateKey(key)
	ts.Setenv("GCP_KEY", key)
	ts.Setenv("SOPS_GCP_KMS_ENDPOINT", gcp.Addr)
	ts.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "gcp-test-token")

	az := azkvtest.New("azure-test-token")
	ts.Defer(az.Close)
	u, _ := url.Parse(az.URL)
	az.Tenant, az.AuthorityHost, az.Resource = "adfs", az.URL, "https://1:"+u.Port()
	az.ClientID, az.ClientSecret = "lacre-cli-test", "azure-client-secret-value"
	az.CreateKey("sops")
	ts.Setenv("AZURE_KEY_URL", az.KeyURL("sops", ""))
	ts.Setenv("AZURE_TENANT_ID", "adfs")
	ts.Setenv("AZURE_CLIENT_ID", az.ClientID)
	ts.Setenv("AZURE_CLIENT_SECRET", az.ClientSecret)
	ts.Setenv("AZURE_AUTHORITY_HOST", az.URL)

	ts.Check(os.WriteFile(ts.MkAbs("cloud.sops.yaml"), []byte(fmt.Sprintf(`creation_rules:
  - shamir_threshold: 2
    key_groups:
      - kms:
          - arn: %s
      - gcp_kms:
          - resource_id: %s
      - azure_keyvault:
          - vaultUrl: %s
            key: sops
`, ts.Getenv("AWS_ARN"), key, az.URL)), 0o600))
	ca := ts.MkAbs("cloud-ca.pem")
	ts.Check(os.WriteFile(ca, append(append([]byte{}, gcp.CACertPEM...), az.CertPEM()...), 0o600))
	ts.Setenv("SSL_CERT_FILE", ca)
}
