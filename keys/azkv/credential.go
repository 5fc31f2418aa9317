package azkv

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"go.yaml.in/yaml/v3"
)

// secretConfig is the content of Flux's `sops.azure-kv` Secret key (see
// fluxcd/kustomize-controller internal/sops/azkv AADConfig): a service
// principal with a client secret or a client certificate, a user-assigned
// managed identity named by its client ID, or the legacy `az ad sp
// create-for-rbac` output (appId, tenant, password).
type secretConfig struct {
	TenantID                   string
	ClientID                   string
	ClientSecret               string
	ClientCertificate          string
	ClientCertificatePassword  string
	ClientCertificateSendChain bool
	AuthorityHost              string

	AppID, Tenant, Password string // az CLI service principal output
}

// ParseSecretCredential returns the credential described by the JSON or YAML
// of a Flux `sops.azure-kv` Secret key. Accepted fields: tenantId, clientId
// and clientSecret; or tenantId, clientId, clientCertificate (PEM or
// PKCS#12), clientCertificatePassword and clientCertificateSendChain; or
// only clientId (a tenantId is ignored) for a user-assigned managed
// identity; or appId, tenant and password (az CLI output). authorityHost
// selects another cloud. Errors never echo field values.
func ParseSecretCredential(data []byte) (azcore.TokenCredential, error) {
	return parseSecretCredential(data, azcore.ClientOptions{}, false)
}

func parseSecretCredential(data []byte, copts azcore.ClientOptions, disableInstanceDiscovery bool) (azcore.TokenCredential, error) {
	c, err := decodeSecretConfig(data)
	if err != nil {
		return nil, err
	}
	if c.AuthorityHost != "" {
		if !strings.HasPrefix(c.AuthorityHost, "https://") {
			return nil, errors.New("invalid azure key vault credential: authorityHost must be an https URL")
		}
		copts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost}
	}
	switch {
	case c.TenantID != "" && c.ClientID != "" && c.ClientSecret != "":
		cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: copts, DisableInstanceDiscovery: disableInstanceDiscovery})
		if err != nil {
			return nil, fmt.Errorf("invalid azure key vault credential: client secret credential for client %q: %v", c.ClientID, safeErr(err))
		}
		return cred, nil
	case c.TenantID != "" && c.ClientID != "" && c.ClientCertificate != "":
		certs, key, err := azidentity.ParseCertificates([]byte(c.ClientCertificate), []byte(c.ClientCertificatePassword))
		if err != nil {
			return nil, fmt.Errorf("invalid azure key vault credential: clientCertificate of client %q is not a PEM or PKCS#12 certificate with its private key (or the password is wrong)", c.ClientID)
		}
		cred, err := azidentity.NewClientCertificateCredential(c.TenantID, c.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: copts, SendCertificateChain: c.ClientCertificateSendChain, DisableInstanceDiscovery: disableInstanceDiscovery})
		if err != nil {
			return nil, fmt.Errorf("invalid azure key vault credential: client certificate credential for client %q: %v", c.ClientID, safeErr(err))
		}
		return cred, nil
	case c.AppID != "" && c.Tenant != "" && c.Password != "":
		cred, err := azidentity.NewClientSecretCredential(c.Tenant, c.AppID, c.Password,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: copts, DisableInstanceDiscovery: disableInstanceDiscovery})
		if err != nil {
			return nil, fmt.Errorf("invalid azure key vault credential: client secret credential for app %q: %v", c.AppID, safeErr(err))
		}
		return cred, nil
	case c.ClientID != "" && c.ClientSecret == "" && c.ClientCertificate == "":
		// As Flux: a client ID without a secret or certificate names a
		// user-assigned managed identity (a tenantId is then unused).
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ClientOptions: copts, ID: azidentity.ClientID(c.ClientID)})
		if err != nil {
			return nil, fmt.Errorf("invalid azure key vault credential: managed identity %q: %v", c.ClientID, safeErr(err))
		}
		return cred, nil
	}
	return nil, errors.New("invalid azure key vault credential: want tenantId, clientId and clientSecret; " +
		"or tenantId, clientId and clientCertificate; or only clientId (managed identity); or appId, tenant and password")
}

// safeErr keeps an SDK constructor error to its first line; constructors
// validate IDs and never see the secret in their messages, but keep it short.
func safeErr(err error) string { return firstLine(err.Error()) }

func decodeSecretConfig(data []byte) (*secretConfig, error) {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil || m == nil {
		// The decoder's message may quote the input: do not return it.
		return nil, errors.New("invalid azure key vault credential: not a JSON or YAML mapping")
	}
	c := &secretConfig{}
	str := map[string]*string{
		"tenantId": &c.TenantID, "clientId": &c.ClientID, "clientSecret": &c.ClientSecret,
		"clientCertificate": &c.ClientCertificate, "clientCertificatePassword": &c.ClientCertificatePassword,
		"authorityHost": &c.AuthorityHost, "appId": &c.AppID, "tenant": &c.Tenant, "password": &c.Password,
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := m[k]
		if k == "clientCertificateSendChain" {
			switch b := v.(type) {
			case bool:
				c.ClientCertificateSendChain = b
			case string:
				switch strings.ToLower(strings.TrimSpace(b)) {
				case "true":
					c.ClientCertificateSendChain = true
				case "false", "":
				default:
					return nil, errors.New("invalid azure key vault credential: clientCertificateSendChain must be true or false")
				}
			case nil:
			default:
				return nil, errors.New("invalid azure key vault credential: clientCertificateSendChain must be true or false")
			}
			continue
		}
		p, ok := str[k]
		if !ok {
			continue // unknown fields are ignored, as Flux does
		}
		switch s := v.(type) {
		case string:
			*p = strings.TrimSpace(s)
		case nil:
		default:
			return nil, fmt.Errorf("invalid azure key vault credential: field %q must be a string", k)
		}
	}
	return c, nil
}
