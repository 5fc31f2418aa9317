package controller

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lacre/lacre/api/meta"
	sourcev1 "github.com/lacre/lacre/api/source/v1"
	"github.com/lacre/lacre/internal/gittest"
)

// gpgSigner makes an OpenPGP signing key in its own GnuPG home (real gpg)
// and returns a gpg program for git's gpg.program and the armored public key.
func gpgSigner(t *testing.T, uid string) (program, armored string) {
	t.Helper()
	home, err := os.MkdirTemp("", "lacre-gpg") // short: gpg-agent's socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	run := func(args ...string) []byte {
		out, err := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...).Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return out
	}
	run("--quick-gen-key", uid, "ed25519", "sign", "never")
	program = filepath.Join(home, "gpg.sh")
	script := "#!/bin/sh\nexec gpg --homedir " + home + " --batch --pinentry-mode loopback --passphrase '' \"$@\"\n"
	if err := os.WriteFile(program, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return program, string(run("--armor", "--export", uid))
}

// sshSigner makes an ed25519 SSH key with ssh-keygen and returns its
// private key file (git's user.signingkey) and authorized-key line.
func sshSigner(t *testing.T) (keyFile, pub string) {
	t.Helper()
	keyFile = filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return keyFile, string(b)
}

func TestGitRepositoryVerify(t *testing.T) {
	g, ns := clusterTest(t)
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed")
	}
	trustedGPG, trustedPub := gpgSigner(t, "trusted <trusted@lacre.invalid>")
	otherGPG, _ := gpgSigner(t, "other <other@lacre.invalid>")
	sshKey, sshPub := sshSigner(t)
	otherSSH, _ := sshSigner(t)

	srv := gittest.New(t, "", "")
	repo := srv.NewRepo("signed", "main")
	pgp := []string{"-c", "gpg.program=" + trustedGPG, "-c", "user.signingkey=trusted@lacre.invalid"}
	commit := func(branch string, cfg ...string) string {
		repo.Run("checkout", "-q", "-B", branch)
		repo.Run(append(cfg, "commit", "-q", "--allow-empty", "-m", branch)...)
		repo.Run("push", "-q", "-f", "origin", branch)
		return repo.Run("rev-parse", "HEAD")
	}
	repo.Commit("base", map[string]string{"app.yaml": "kind: ConfigMap\n"})
	pgpHash := commit("pgp", append(pgp, "-c", "commit.gpgsign=true")...)
	repo.Run(append(pgp, "tag", "-s", "-m", "signed", "v1.0.0")...)
	repo.Run("tag", "-a", "-m", "unsigned", "v0.9.0")
	repo.Run("push", "-q", "origin", "v1.0.0", "v0.9.0")
	sshHash := commit("ssh", "-c", "gpg.format=ssh", "-c", "user.signingkey="+sshKey, "-c", "commit.gpgsign=true")
	commit("unsigned")
	commit("wrong-ssh", "-c", "gpg.format=ssh", "-c", "user.signingkey="+otherSSH, "-c", "commit.gpgsign=true")
	commit("wrong", "-c", "gpg.program="+otherGPG, "-c", "user.signingkey=other@lacre.invalid", "-c", "commit.gpgsign=true")

	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keys"},
		StringData: map[string]string{"author.asc": trustedPub, "author.sshpub": sshPub}}
	g.Expect(testClient.Create(testCtx, keys)).To(Succeed())

	create := func(name string, ref *sourcev1.GitRepositoryRef, mode sourcev1.GitVerificationMode) {
		obj := gitRepo(ns, name, repo.URL(), ref)
		obj.Spec.Verification = &sourcev1.GitRepositoryVerification{Mode: mode, SecretRef: meta.LocalObjectReference{Name: "keys"}}
		g.Expect(testClient.Create(testCtx, obj)).To(Succeed())
	}
	create("pgp", &sourcev1.GitRepositoryRef{Branch: "pgp"}, "")
	create("ssh", &sourcev1.GitRepositoryRef{Branch: "ssh"}, sourcev1.ModeGitHEAD)
	create("tag", &sourcev1.GitRepositoryRef{Tag: "v1.0.0"}, sourcev1.ModeGitTagAndHEAD)
	create("unsigned", &sourcev1.GitRepositoryRef{Branch: "unsigned"}, sourcev1.ModeGitHEAD)
	create("wrong", &sourcev1.GitRepositoryRef{Branch: "wrong"}, sourcev1.ModeGitHEAD)
	create("wrong-ssh", &sourcev1.GitRepositoryRef{Branch: "wrong-ssh"}, sourcev1.ModeGitHEAD)
	create("unsigned-tag", &sourcev1.GitRepositoryRef{Tag: "v0.9.0"}, sourcev1.ModeGitTag)
	create("tag-on-branch", &sourcev1.GitRepositoryRef{Branch: "pgp"}, sourcev1.ModeGitTag)

	verified := func(name, revision string, mode sourcev1.GitVerificationMode) {
		g.Eventually(func(g Gomega) {
			g.Expect(readyRevision(g, ns, name)).To(Equal(revision))
			obj := getRepo(g, ns, name)
			c := condition(g, obj.Status.Conditions, sourcev1.SourceVerifiedCondition)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
			g.Expect(obj.Status.SourceVerificationMode).To(HaveValue(Equal(mode)))
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), name)
	}
	verified("pgp", "pgp@sha1:"+pgpHash, sourcev1.ModeGitHEAD) // the CRD defaults mode to HEAD
	verified("ssh", "ssh@sha1:"+sshHash, sourcev1.ModeGitHEAD)
	verified("tag", "v1.0.0@sha1:"+pgpHash, sourcev1.ModeGitTagAndHEAD)

	refused := func(name, reason string, stalled bool) {
		g.Eventually(func(g Gomega) {
			obj := getRepo(g, ns, name)
			c := condition(g, obj.Status.Conditions, sourcev1.SourceVerifiedCondition)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(reason))
			r := condition(g, obj.Status.Conditions, meta.ReadyCondition)
			g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(r.Reason).To(Equal(reason))
			g.Expect(obj.Status.Artifact).To(BeNil())
			g.Expect(obj.Status.SourceVerificationMode).To(BeNil())
			if stalled {
				g.Expect(condition(g, obj.Status.Conditions, meta.StalledCondition).Status).To(Equal(metav1.ConditionTrue))
			}
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed(), name)
	}
	refused("unsigned", "InvalidCommitSignature", false)
	refused("wrong", "InvalidCommitSignature", false)
	refused("wrong-ssh", "InvalidCommitSignature", false)
	refused("unsigned-tag", "InvalidGitObject", false)
	refused("tag-on-branch", "InvalidVerificationMode", true)
}
