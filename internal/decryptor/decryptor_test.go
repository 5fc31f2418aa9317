package decryptor

import (
	"strings"
	"testing"

	"filippo.io/age"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const canary = "CANARY-decryptor-0c3a"

// TestSecretIdentities: each entry of the contract gives a key, other
// entries none; a bad entry is named, its content never quoted.
func TestSecretIdentities(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	sec := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "sops"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	ids, err := Options{}.SecretIdentities(sec(map[string]string{
		"a" + AgeKeySuffix: id.String() + "\n",
		VaultTokenEntry:    "token\n",
		AWSKMSEntry:        "aws_access_key_id: A\naws_secret_access_key: B\n",
		AzureKVEntry:       `{"tenantId": "t", "clientId": "c", "clientSecret": "s"}`,
		GCPKMSEntry:        `{"type": "service_account"}`,
		"README":           "not a key",
	}))
	if err != nil || len(ids) != 5 {
		t.Fatalf("SecretIdentities: %d keys, %v", len(ids), err)
	}
	for _, name := range []string{"bad" + AgeKeySuffix, "bad" + PGPKeySuffix, AWSKMSEntry, AzureKVEntry} {
		_, err := Options{}.SecretIdentities(sec(map[string]string{name: canary + ": [\n"}))
		if err == nil || !strings.Contains(err.Error(), "'t/sops' entry \""+name+"\"") || strings.Contains(err.Error(), canary) {
			t.Errorf("%s: %v", name, err)
		}
		if err := Check(name, []byte(canary+": [\n")); err == nil || strings.Contains(err.Error(), canary) {
			t.Errorf("Check(%s): %v", name, err)
		}
	}
	if err := Check(GCPKMSEntry, []byte(canary)); err == nil || strings.Contains(err.Error(), canary) {
		t.Errorf("Check(gcp): %v", err)
	}
	if err := Check("x"+AgeKeySuffix, []byte(id.String())); err != nil {
		t.Errorf("Check(age): %v", err)
	}
}
