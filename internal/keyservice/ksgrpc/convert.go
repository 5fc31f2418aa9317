// Package ksgrpc carries a keyservice.Service over gRPC in sops's wire
// format: Server answers "KeyService" requests with a Service (what
// "lacre-cluster keyservice" listens with), Dial returns a Service that
// calls a remote one (--keyservice). It links gRPC, so only lacre-cluster
// imports it; lacre reaches it through the companion (package cloudproto).
package ksgrpc

import (
	"fmt"
	"maps"

	"github.com/lacre/lacre/internal/keyservice/kspb"
	"github.com/lacre/lacre/keys"
)

// toKey returns the protocol's Key for the master key s names.
func toKey(s *keys.Stanza) (*kspb.Key, error) {
	f := s.Field
	k := &kspb.Key{}
	switch s.Type {
	case keys.TypeAge:
		k.KeyType = &kspb.Key_AgeKey{AgeKey: &kspb.AgeKey{Recipient: f("recipient")}}
	case keys.TypePGP:
		k.KeyType = &kspb.Key_PgpKey{PgpKey: &kspb.PgpKey{Fingerprint: f("fp")}}
	case keys.TypeKMS:
		k.KeyType = &kspb.Key_KmsKey{KmsKey: &kspb.KmsKey{Arn: f("arn"), Role: f("role"), AwsProfile: f("aws_profile"), Context: maps.Clone(s.Context)}}
	case keys.TypeGCPKMS:
		k.KeyType = &kspb.Key_GcpKmsKey{GcpKmsKey: &kspb.GcpKmsKey{ResourceId: f("resource_id")}}
	case keys.TypeAzureKV:
		k.KeyType = &kspb.Key_AzureKeyvaultKey{AzureKeyvaultKey: &kspb.AzureKeyVaultKey{VaultUrl: f("vault_url"), Name: f("name"), Version: f("version")}}
	case keys.TypeVault:
		k.KeyType = &kspb.Key_VaultKey{VaultKey: &kspb.VaultKey{VaultAddress: f("vault_address"), EnginePath: f("engine_path"), KeyName: f("key_name")}}
	case keys.TypeHCKMS:
		k.KeyType = &kspb.Key_HckmsKey{HckmsKey: &kspb.HckmsKey{KeyId: f("key_id")}}
	default:
		return nil, fmt.Errorf("master key type %q has no key service form", s.Type)
	}
	return k, nil
}

// fromKey returns the stanza (without a wrapped key) of the protocol's
// Key; nil for a Key of no known type.
func fromKey(k *kspb.Key) *keys.Stanza {
	set := func(typ string, kv ...string) *keys.Stanza {
		s := &keys.Stanza{Type: typ, Fields: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			// As the stores write them: optional fields only when set.
			if kv[i+1] != "" || typ != keys.TypeKMS {
				s.Fields[kv[i]] = kv[i+1]
			}
		}
		return s
	}
	switch t := k.GetKeyType().(type) {
	case *kspb.Key_AgeKey:
		return set(keys.TypeAge, "recipient", t.AgeKey.GetRecipient())
	case *kspb.Key_PgpKey:
		return set(keys.TypePGP, "fp", t.PgpKey.GetFingerprint())
	case *kspb.Key_KmsKey:
		s := set(keys.TypeKMS, "arn", t.KmsKey.GetArn(), "role", t.KmsKey.GetRole(), "aws_profile", t.KmsKey.GetAwsProfile())
		if len(t.KmsKey.GetContext()) > 0 {
			s.Context = maps.Clone(t.KmsKey.GetContext())
		}
		return s
	case *kspb.Key_GcpKmsKey:
		return set(keys.TypeGCPKMS, "resource_id", t.GcpKmsKey.GetResourceId())
	case *kspb.Key_AzureKeyvaultKey:
		a := t.AzureKeyvaultKey
		return set(keys.TypeAzureKV, "vault_url", a.GetVaultUrl(), "name", a.GetName(), "version", a.GetVersion())
	case *kspb.Key_VaultKey:
		v := t.VaultKey
		return set(keys.TypeVault, "vault_address", v.GetVaultAddress(), "engine_path", v.GetEnginePath(), "key_name", v.GetKeyName())
	case *kspb.Key_HckmsKey:
		return set(keys.TypeHCKMS, "key_id", t.HckmsKey.GetKeyId())
	}
	return nil
}
