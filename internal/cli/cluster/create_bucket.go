package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/cli/cliapp"
)

// bucketProviders are the values of flux's --provider, in its order.
var bucketProviders = []string{sourcev1.BucketProviderGeneric, sourcev1.BucketProviderAmazon, sourcev1.BucketProviderAzure, sourcev1.BucketProviderGoogle}

// createSourceBucketCommand is flux's `create source bucket`: the Bucket
// and, with --access-key and --secret-key, the Secret bucket-NAME holding
// them (accesskey, secretkey); it waits for the artifact.
func (a *app) createSourceBucketCommand() *cobra.Command {
	var cf clusterFlags
	var provider, bucketName, endpoint, accessKey, secretKey, region, secretRef, proxySecretRef string
	var insecure bool
	var ignorePaths []string
	var interval, fetchTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "bucket NAME --bucket-name NAME --endpoint HOST[:PORT] [--provider generic|aws] [--access-key K --secret-key S|--secret-ref NAME]",
		Short: "Create or update a Bucket source and wait for its artifact",
		Example: `  lacre create source bucket podinfo --bucket-name=podinfo --endpoint=minio.minio.svc.cluster.local:9000 \
    --insecure=true --access-key=myaccesskey --secret-key=mysecretkey --interval=10m
  lacre create source bucket podinfo --bucket-name=podinfo --provider=aws --endpoint=s3.amazonaws.com \
    --region=us-east-1 --interval=10m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(bucketProviders, provider) {
				return cliapp.Codef(cliapp.CodeGeneric, "source bucket provider '%s' is not supported, must be one of: %s", provider, strings.Join(bucketProviders, ", "))
			}
			if bucketName == "" {
				return cliapp.Codef(cliapp.CodeGeneric, "bucket-name is required")
			}
			if endpoint == "" {
				return cliapp.Codef(cliapp.CodeGeneric, "endpoint is required")
			}
			b := &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: cf.namespace},
				Spec: sourcev1.BucketSpec{BucketName: bucketName, Provider: provider, Insecure: insecure, Endpoint: endpoint,
					Region: region, Interval: metav1.Duration{Duration: interval}}}
			if len(ignorePaths) > 0 {
				ig := strings.Join(ignorePaths, "\n")
				b.Spec.Ignore = &ig
			}
			if fetchTimeout > 0 {
				b.Spec.Timeout = &metav1.Duration{Duration: fetchTimeout}
			}
			if secretRef != "" {
				b.Spec.SecretRef = &meta.LocalObjectReference{Name: secretRef}
			}
			if proxySecretRef != "" {
				b.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: proxySecretRef}
			}
			if cf.export {
				return a.printYAML(b) // as flux: the Bucket only
			}
			var objs []client.Object
			if secretRef == "" && accessKey != "" && secretKey != "" {
				name := "bucket-" + args[0]
				objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cf.namespace},
					StringData: map[string]string{"accesskey": accessKey, "secretkey": secretKey}})
				b.Spec.SecretRef = &meta.LocalObjectReference{Name: name}
			}
			c, err := cf.apply(cmd.Context(), append(objs, b)...)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "lacre: Bucket %s/%s applied, waiting for the artifact\n", cf.namespace, args[0])
			if err := waitReady(cmd.Context(), c, b, cf.timeout, func() []metav1.Condition { return b.Status.Conditions }); err != nil {
				return err
			}
			if b.Status.Artifact == nil {
				return fmt.Errorf("Bucket source reconciliation but no artifact was found")
			}
			fmt.Fprintf(a.Stdout, "fetched revision: %s\n", b.Status.Artifact.Revision)
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&provider, "provider", sourcev1.BucketProviderGeneric, "the S3 compatible storage provider name (generic|aws|azure|gcp); lacre-cluster honours generic and aws")
	f.StringVar(&bucketName, "bucket-name", "", "the bucket name")
	f.StringVar(&endpoint, "endpoint", "", "the bucket endpoint address")
	f.StringVar(&accessKey, "access-key", "", "the bucket access key")
	f.StringVar(&secretKey, "secret-key", "", "the bucket secret key")
	f.StringVar(&region, "region", "", "the bucket region")
	f.BoolVar(&insecure, "insecure", false, "for when connecting to a non-TLS S3 HTTP endpoint")
	f.StringVar(&secretRef, "secret-ref", "", "the name of an existing secret containing credentials")
	f.StringVar(&proxySecretRef, "proxy-secret-ref", "", "the name of an existing secret containing the proxy address and credentials")
	f.StringSliceVar(&ignorePaths, "ignore-paths", nil, "set paths to ignore in bucket resource (can specify multiple paths with commas: path1,path2)")
	f.DurationVar(&interval, "interval", time.Minute, "source sync interval")
	f.DurationVar(&fetchTimeout, "fetch-timeout", 0, "set a timeout for fetch operations performed by source-controller (e.g. 'Bucket' fetch)")
	return cmd
}
