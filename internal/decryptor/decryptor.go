// Package decryptor owns the decryption-Secret contract of the
// Kustomization controller, Flux's: the entry names a decryption Secret
// holds (*.agekey, *.asc, sops.vault-token, sops.aws-kms, sops.azure-kv,
// sops.gcp-kms; and lacre's sops.vault-address), how each entry becomes a key, and which keys a
// Kustomization may use (its own Secret, the operator's default age
// Secret, the controller's ambient cloud identity), behind the data-key
// cache. The controller reads Secrets with it; `lacre create secret sops`
// writes them with its names and checks them with Check.
package decryptor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lacre/lacre/keys"
	agekeys "github.com/lacre/lacre/keys/age"
	"github.com/lacre/lacre/keys/awskms"
	"github.com/lacre/lacre/keys/azkv"
	"github.com/lacre/lacre/keys/gcpkms"
	"github.com/lacre/lacre/keys/pgp"
	"github.com/lacre/lacre/keys/vault"
)

// Entry names of a decryption Secret (Flux's).
const (
	// AgeKeySuffix ends the names of entries holding age identities.
	AgeKeySuffix = ".agekey"
	// PGPKeySuffix ends the names of entries holding armored PGP keys.
	PGPKeySuffix = ".asc"
	// VaultTokenEntry holds a Vault token.
	VaultTokenEntry = "sops.vault-token"
	// VaultAddressEntry (lacre's, not Flux's) lists the Vault addresses,
	// comma- or newline-separated, the Secret's VaultTokenEntry may be
	// sent to when the controller has no --sops-vault-allowlist.
	VaultAddressEntry = "sops.vault-address"
	// AWSKMSEntry holds static AWS credentials (YAML).
	AWSKMSEntry = "sops.aws-kms"
	// AzureKVEntry holds Azure credentials (JSON or YAML).
	AzureKVEntry = "sops.azure-kv"
	// GCPKMSEntry holds a Google credentials JSON file.
	GCPKMSEntry = "sops.gcp-kms"
	// Entries lists the entry names, for messages and help.
	Entries = "*" + AgeKeySuffix + ", *" + PGPKeySuffix + ", " + VaultTokenEntry + ", " + AWSKMSEntry + ", " + AzureKVEntry + ", " + GCPKMSEntry
)

// Options configure where the Kustomization controller finds keys
// besides the decryption Secret named by spec.decryption.secretRef.
type Options struct {
	// AmbientCloudCredentials lets every Kustomization use the
	// controller's own cloud identity (EKS IRSA, GKE workload identity,
	// Azure workload or managed identity) for KMS stanzas. Off by default:
	// with it, any tenant can decrypt what the controller's identity can.
	AmbientCloudCredentials bool
	// DefaultAgeSecret, when set, is a Secret (in the controller's
	// namespace) whose *.agekey entries are added for Kustomizations in the
	// namespaces DefaultAgeNamespaces selects, and only those.
	DefaultAgeSecret     types.NamespacedName
	DefaultAgeNamespaces labels.Selector
	// DefaultAgeFallbackOnly adds the default age Secret's keys only to
	// Kustomizations without decryption.secretRef (Flux's
	// --sops-age-secret=NAME).
	DefaultAgeFallbackOnly bool
	// AWS, GCP and Azure are the base options of the cloud KMS clients
	// (endpoints, transports); credentials come from the Secret's
	// AWSKMSEntry, GCPKMSEntry and AzureKVEntry, or the ambient identity.
	AWS   awskms.Options
	GCP   gcpkms.Options
	Azure azkv.Options
	// VaultAllowlist holds the Vault addresses a VaultTokenEntry may be
	// sent to (vault.AddressAllowed). nil: the addresses the decryption
	// Secret itself names in VaultAddressEntry, and no other. A file names
	// its own vault_address, so without a list a commit could send the
	// token to a server of its choosing.
	VaultAllowlist []string
	// VaultAnyAddress sends a VaultTokenEntry to whatever address a file
	// names (Flux's behaviour; --sops-vault-allowlist=all).
	VaultAnyAddress bool

	// secretVaultAddresses is the VaultAddressEntry of the Secret being
	// read.
	secretVaultAddresses string
}

// vaultOptions returns the options of a VaultTokenEntry: the token, and
// the addresses it may be sent to with how to allow another.
func (o Options) vaultOptions(token string) vault.Options {
	vo := vault.Options{Token: token}
	switch {
	case o.VaultAnyAddress:
	case o.VaultAllowlist != nil:
		vo.Allowlist, vo.AllowHint = o.VaultAllowlist, "allow it with the controller's --sops-vault-allowlist"
	default:
		// An invalid entry is reported as that entry's error; it allows
		// no address.
		vo.Allowlist, _ = vault.ParseAllowlist(o.secretVaultAddresses)
		if vo.Allowlist == nil {
			vo.Allowlist = []string{}
		}
		vo.AllowHint = fmt.Sprintf("name it in the decryption Secret's %q entry, or in the controller's --sops-vault-allowlist", VaultAddressEntry)
	}
	return vo
}

// entry parses one Secret entry into keys; nil, nil for a name outside
// the contract. Errors never quote the content.
func (o Options) entry(name string, v []byte) ([]keys.Identity, error) {
	switch {
	case strings.HasSuffix(name, AgeKeySuffix):
		return agekeys.ParseIdentities(bytes.NewReader(v))
	case strings.HasSuffix(name, PGPKeySuffix):
		id, err := pgp.ParseArmoredIdentities(v)
		if err != nil {
			return nil, err
		}
		return []keys.Identity{id}, nil
	case name == VaultTokenEntry:
		return []keys.Identity{vault.NewIdentity(o.vaultOptions(strings.TrimSpace(string(v))))}, nil
	case name == VaultAddressEntry:
		if strings.TrimSpace(string(v)) == "all" {
			return nil, errors.New("list Vault addresses (\"all\" is the controller's --sops-vault-allowlist=all)")
		}
		_, err := vault.ParseAllowlist(string(v))
		return nil, err
	case name == AWSKMSEntry:
		creds, err := awskms.ParseSecretCredentials(v)
		if err != nil {
			return nil, err
		}
		aws := o.AWS
		aws.Credentials = creds
		return []keys.Identity{awskms.NewIdentity(aws)}, nil
	case name == AzureKVEntry:
		cred, err := azkv.ParseSecretCredential(v)
		if err != nil {
			return nil, err
		}
		az := o.Azure
		az.Credential = cred
		return []keys.Identity{azkv.NewIdentity(az)}, nil
	case name == GCPKMSEntry:
		gcp := o.GCP
		gcp.CredentialsJSON = bytes.Clone(v)
		gcp.AccessToken = ""
		return []keys.Identity{gcpkms.NewIdentity(gcp)}, nil
	}
	return nil, nil
}

// Check checks an entry the way the controller will read it, and a
// GCPKMSEntry for a credentials file's "type". Errors never quote the
// content.
func Check(name string, v []byte) error {
	if name == GCPKMSEntry {
		var c struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(v, &c) != nil || c.Type == "" {
			return errors.New("not a Google credentials JSON file (no \"type\")")
		}
		return nil
	}
	_, err := Options{}.entry(name, v)
	return err
}

// SecretIdentities reads the entries of a decryption Secret, in name
// order. Errors name the Secret and the entry, never its content.
func (o Options) SecretIdentities(sec *corev1.Secret) ([]keys.Identity, error) {
	o.secretVaultAddresses = string(sec.Data[VaultAddressEntry])
	var ids []keys.Identity
	for _, n := range slices.Sorted(maps.Keys(sec.Data)) {
		got, err := o.entry(n, sec.Data[n])
		if err != nil {
			return nil, fmt.Errorf("decryption Secret '%s/%s' entry %q: %v", sec.Namespace, sec.Name, n, err)
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// defaultAgeIdentities reads the AgeKeySuffix entries of the default age
// Secret, and only those.
func (o Options) defaultAgeIdentities(data map[string][]byte) ([]keys.Identity, error) {
	var ids []keys.Identity
	for _, n := range slices.Sorted(maps.Keys(data)) {
		if !strings.HasSuffix(n, AgeKeySuffix) {
			continue
		}
		got, err := agekeys.ParseIdentities(bytes.NewReader(data[n]))
		if err != nil {
			return nil, fmt.Errorf("default age Secret '%s' entry %q: %v", o.DefaultAgeSecret, n, err)
		}
		ids = append(ids, got...)
	}
	return ids, nil
}
