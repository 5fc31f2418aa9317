// Package bucket fetches the objects of an S3-compatible bucket (a Bucket
// source) through minio-go, as Flux's source-controller does: the index of
// the keys under a prefix with their ETags, filtered by the bucket's
// .sourceignore and spec.ignore, its revision (the sha256 of the sorted
// "key etag" lines), and the objects' contents, read bounded and charged
// to an artifact.Lease before they are held.
package bucket

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/lacre/lacre/internal/artifact"
)

// IgnoreFile is the object, at the bucket's root, whose patterns exclude
// objects (as Flux's .sourceignore).
const IgnoreFile = ".sourceignore"

// Credentials are static S3 credentials: a Bucket secretRef's accesskey
// and secretkey, or what the AWS chain resolved.
type Credentials struct {
	AccessKey, SecretKey, SessionToken string
}

// ErrInvalidSecret is returned for a credentials Secret without the keys
// Flux requires.
var ErrInvalidSecret = errors.New("invalid secret")

// CredentialsFromSecret reads a Bucket's secretRef Secret by Flux's keys,
// accesskey and secretkey, both required (Flux's ValidateSecret); name is
// the Secret's, for the message. As in Flux, an empty value of either
// means anonymous access.
func CredentialsFromSecret(name string, data map[string][]byte) (*Credentials, error) {
	ak, okA := data["accesskey"]
	sk, okS := data["secretkey"]
	if !okA || !okS {
		return nil, fmt.Errorf("%w: '%s' secret data: required fields 'accesskey' and 'secretkey'", ErrInvalidSecret, name)
	}
	if len(ak) == 0 || len(sk) == 0 {
		return nil, nil
	}
	return &Credentials{AccessKey: string(ak), SecretKey: string(sk)}, nil
}

// Config is where a bucket is and how to reach it.
type Config struct {
	Endpoint   string // host[:port]
	BucketName string
	Region     string
	Prefix     string
	Insecure   bool // plain HTTP
	// Credentials sign the requests; nil: anonymous.
	Credentials *Credentials
	// TLS is the client TLS configuration (certSecretRef), nil: defaults.
	TLS *tls.Config
	// Proxy is the proxy URL (with its user info), nil: none.
	Proxy *url.URL
	// Ignore is spec.ignore: patterns added after the .sourceignore's.
	Ignore *string
}

// Client lists and fetches a bucket's objects.
type Client struct {
	cfg Config
	mc  *minio.Client
}

// New returns a client for cfg, configured as Flux's minio client:
// region, TLS unless Insecure, automatic bucket lookup (virtual host or
// path style), the TLS configuration and proxy on minio's default
// transport.
func New(cfg Config) (*Client, error) {
	opts := &minio.Options{Region: cfg.Region, Secure: !cfg.Insecure}
	if c := cfg.Credentials; c != nil {
		opts.Creds = credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken)
	}
	if (opts.Secure && cfg.TLS != nil) || cfg.Proxy != nil {
		tr, err := minio.DefaultTransport(opts.Secure)
		if err != nil {
			return nil, fmt.Errorf("failed to create default minio transport: %w", err)
		}
		if opts.Secure && cfg.TLS != nil {
			tr.TLSClientConfig = cfg.TLS.Clone()
		}
		if cfg.Proxy != nil {
			tr.Proxy = http.ProxyURL(cfg.Proxy)
		}
		opts.Transport = tr
	}
	mc, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, mc: mc}, nil
}

// Object is one indexed object: its key, ETag and listed size.
type Object struct {
	Key, ETag string
	Size      int64
}

// Index is the set of objects an artifact is built from, by key.
type Index struct {
	objects map[string]Object
	// ignore is the root .sourceignore object's content, nil without one.
	ignore []byte
}

// Len is the number of indexed objects.
func (x *Index) Len() int { return len(x.objects) }

// Revision is Flux's Bucket revision: "sha256:" and the hex sha256 of the
// lines "<key> <etag>\n" in key order.
func (x *Index) Revision() string {
	keys := x.keys()
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s %s\n", k, x.objects[k].ETag)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (x *Index) keys() []string {
	keys := make([]string, 0, len(x.objects))
	for k := range x.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Index confirms the bucket exists, reads its root .sourceignore and lists
// the objects under the prefix, keeping those not ignored (Flux's
// fetchEtagIndex). Directory markers (keys ending in "/") and the root
// .sourceignore are not indexed. More than lim.MaxFiles indexed objects,
// one larger than lim.MaxFileSize or all together larger than
// lim.MaxTotalSize fail with artifact.ErrTooLarge before anything is
// downloaded.
func (c *Client) Index(ctx context.Context, lim artifact.Limits) (*Index, error) {
	lim = lim.WithDefaults()
	name := c.cfg.BucketName
	exists, err := c.mc.BucketExists(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("failed to confirm existence of '%s' bucket: %w", name, err)
	}
	if !exists {
		return nil, fmt.Errorf("bucket '%s' not found", name)
	}
	x := &Index{objects: map[string]Object{}}
	ignore, _, err := c.get(ctx, IgnoreFile, lim.MaxFileSize, nil)
	switch {
	case err == nil:
		x.ignore = ignore
	case !isNotFound(err):
		return nil, fmt.Errorf("failed to get Etag for '%s' object: %w", IgnoreFile, err)
	}
	patterns := artifact.ParseIgnore(string(ignore), nil)
	if c.cfg.Ignore != nil {
		patterns = append(patterns, artifact.ParseIgnore(*c.cfg.Ignore, nil)...)
	}
	matcher := gitignore.NewMatcher(patterns)
	var total int64
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine on an early return
	for o := range c.mc.ListObjects(lctx, name, minio.ListObjectsOptions{
		Recursive: true, Prefix: c.cfg.Prefix, UseV1: s3utils.IsGoogleEndpoint(*c.mc.EndpointURL()),
	}) {
		if o.Err != nil {
			return nil, fmt.Errorf("indexation of objects from bucket '%s' failed: listing objects from bucket '%s' failed: %w", name, name, o.Err)
		}
		if strings.HasSuffix(o.Key, "/") || o.Key == IgnoreFile || matcher.Match(strings.Split(o.Key, "/"), false) {
			continue
		}
		if o.Size > lim.MaxFileSize {
			return nil, fmt.Errorf("%w: object %q is %d bytes, more than %s", artifact.ErrTooLarge, o.Key, o.Size, artifact.FormatSize(lim.MaxFileSize))
		}
		if total += o.Size; total > lim.MaxTotalSize {
			return nil, fmt.Errorf("%w: the objects of bucket '%s' exceed %s", artifact.ErrTooLarge, name, artifact.FormatSize(lim.MaxTotalSize))
		}
		if len(x.objects) >= lim.MaxFiles {
			return nil, fmt.Errorf("%w: bucket '%s' holds more than %d objects", artifact.ErrTooLarge, name, lim.MaxFiles)
		}
		x.objects[o.Key] = Object{Key: o.Key, ETag: o.ETag, Size: o.Size}
	}
	return x, nil
}

// get reads one object whole, at most max bytes, and returns its ETag;
// charge (when not nil) is given the object's size before it is read.
func (c *Client) get(ctx context.Context, key string, max int64, charge func(int64) error) ([]byte, string, error) {
	obj, err := c.mc.GetObject(ctx, c.cfg.BucketName, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", err
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		return nil, "", err
	}
	if st.Size > max {
		return nil, "", fmt.Errorf("%w: object %q is %d bytes, more than %s", artifact.ErrTooLarge, key, st.Size, artifact.FormatSize(max))
	}
	if charge != nil {
		if err := charge(st.Size); err != nil {
			return nil, "", err
		}
	}
	data, err := readAtMost(obj, st.Size)
	if err != nil {
		return nil, "", fmt.Errorf("reading object %q: %w", key, err)
	}
	return data, st.ETag, nil
}

// isNotFound reports whether err is S3's NoSuchKey.
func isNotFound(err error) bool {
	return minio.ToErrorResponse(errors.Unwrap(err)).Code == "NoSuchKey" || minio.ToErrorResponse(err).Code == "NoSuchKey"
}

// cleanKey is the artifact path of an object key: confined to the
// artifact as Flux's secure join does ("../a" is "a").
func cleanKey(key string) string {
	return strings.TrimPrefix(path.Clean("/"+key), "/")
}
