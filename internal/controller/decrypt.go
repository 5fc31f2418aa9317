package controller

import (
	"context"
	"errors"

	kustomizev1 "github.com/lacre/lacre/api/kustomize/v1"
	"github.com/lacre/lacre/internal/build"
	"github.com/lacre/lacre/internal/decryptor"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/sops"
)

// The decrypt phase: the keys a Kustomization may use (internal/decryptor
// owns the decryption Secret's contract), and how a build's decryption
// errors are classified.

// DecryptionOptions configure where the Kustomization controller finds
// keys besides the decryption Secret.
type DecryptionOptions = decryptor.Options

// decryption turns on decryption in opts when the Kustomization asks for
// it, with the keys it may use.
func (r *KustomizationReconciler) decryption(ctx context.Context, obj *kustomizev1.Kustomization, opts *build.Options) *failure {
	if obj.Spec.Decryption == nil {
		return nil
	}
	d := &decryptor.Decryptor{Options: r.Decryption, Reader: r.APIReader, Cache: r.KeyCache, OnUnwrap: func(typ string) {
		r.unwraps.Add(1)
		UnwrapCalls.WithLabelValues(typ).Inc()
	}}
	ids, err := d.Identities(ctx, obj)
	if err != nil {
		Decryptions.WithLabelValues("secret_error").Inc()
		return fail(kustomizev1.DecryptionFailedReason, err.Error())
	}
	opts.Decrypt, opts.Identities = true, ids
	return nil
}

// decryptionFailed reports whether a build failed for want of a key, a
// tampered or undecryptable file, or a Secret without SOPS.
func decryptionFailed(err error) bool {
	return errors.Is(err, keys.ErrNoKey) || errors.Is(err, sops.ErrMACMismatch) || errors.Is(err, sops.ErrMACDecrypt) ||
		errors.Is(err, sops.ErrDecryptValue) || errors.Is(err, build.ErrEncryptedNotDecrypted) || errors.Is(err, build.ErrPlaintextSecret) ||
		errors.Is(err, build.ErrStillEncrypted)
}

// countDecryption counts a decrypting build's outcome in
// lacre_decryptions_total.
func countDecryption(err error) {
	if o := decryptionOutcome(err); o != "" {
		Decryptions.WithLabelValues(o).Inc()
	}
}

// decryptionOutcome classifies a build error for lacre_decryptions_total.
func decryptionOutcome(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, keys.ErrNoKey):
		return "no_key"
	case errors.Is(err, sops.ErrMACMismatch), errors.Is(err, sops.ErrMACDecrypt):
		return "mac_mismatch"
	case errors.Is(err, sops.ErrDecryptValue), errors.Is(err, build.ErrEncryptedNotDecrypted), errors.Is(err, build.ErrStillEncrypted):
		return "tampered"
	case errors.Is(err, build.ErrPlaintextSecret):
		return "plaintext_secret"
	}
	return ""
}
