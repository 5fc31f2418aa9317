package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/cli/cliapp"
	"github.com/lacre/lacre/internal/cli/cloudproto"
	"github.com/lacre/lacre/keys/vault"
	"github.com/lacre/lacre/rules"
	"github.com/lacre/lacre/sops"
	"github.com/lacre/lacre/sops/formats"
	"github.com/lacre/lacre/sopsfile"
)

// publishFlags are sops's publish flags.
type publishFlags struct {
	yes, omitExt, recursive bool
	df                      decryptFlags
	answers                 *bufio.Reader // stdin, for the prompts
}

func (a *app) publishCommand() *cobra.Command {
	var pf publishFlags
	cmd := &cobra.Command{
		Use:   "publish [flags] FILE|DIR",
		Short: "Publish a file or directory to the destination of its .sops.yaml destination rule",
		Long: `Publish SOPS files to the destination named by the first destination_rules entry of
.sops.yaml whose path_regex matches the path given: the decrypted keys and values
are written as a Vault KV secret (vault_path, vault_address or VAULT_ADDR,
vault_kv_mount_name, vault_kv_version 1 or 2) named after the file, with the
Vault token of the environment (VAULT_TOKEN or ~/.vault-token); or the encrypted
file is uploaded to S3 (s3_bucket, s3_prefix) or GCS (gcs_bucket, gcs_prefix),
encrypted again for the keys of recreation_rule when it has some. Each upload is
confirmed unless -y. S3 and GCS go through lacre-cluster (the cloud SDKs).`,
		Example: `  lacre publish -y secrets/app.enc.yaml
  lacre publish -y --recursive --omit-extensions secrets/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.publish(cmd.Context(), args[0], &pf)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&pf.yes, "yes", "y", false, "publish without asking")
	f.BoolVar(&pf.omitExt, "omit-extensions", false, "drop the file's extension in the destination's name")
	f.BoolVar(&pf.recursive, "recursive", false, "publish every file under a directory (names relative to it)")
	f.StringVar(&pf.df.decryptionOrder, "decryption-order", "", "master key types to try first, comma separated (env SOPS_DECRYPTION_ORDER)")
	return cmd
}

func (a *app) publish(ctx context.Context, root string, pf *publishFlags) error {
	st, err := os.Stat(root)
	if err != nil {
		if os.IsNotExist(err) {
			return cliapp.WithCode(cliapp.CodeNoFileSpecified, err)
		}
		return cliapp.WithCode(cliapp.CodeGeneric, err)
	}
	if st.IsDir() && !pf.recursive {
		return cliapp.Codef(cliapp.CodeGeneric, "%s is a directory: publish it with --recursive", root)
	}
	s, err := a.newSession()
	if err != nil {
		return err
	}
	if s.lc.cfg == nil {
		return cliapp.Codef(cliapp.CodeGeneric, "no .sops.yaml found: publish needs its destination_rules")
	}
	pf.answers = bufio.NewReader(a.Stdin)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return cliapp.WithCode(cliapp.CodeGeneric, err)
		}
		if d.IsDir() {
			return nil
		}
		if err := a.publishFile(ctx, s, root, p, pf); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
}

// publishFile publishes one file; root is the path given.
func (a *app) publishFile(ctx context.Context, s *session, root, file string, pf *publishFlags) error {
	d, err := s.lc.cfg.Destination(file)
	if err != nil || !d.HasDestination() {
		return cliapp.Codef(cliapp.CodeGeneric, "no destination configured for this file in %s (destination_rules)", s.lc.path)
	}
	name := filepath.Base(file)
	if pf.recursive {
		if name, err = filepath.Rel(root, file); err != nil {
			return err
		}
		name = filepath.ToSlash(name)
		if name == "." {
			name = filepath.Base(file)
		}
	}
	if pf.omitExt || d.OmitExtensions {
		name = strings.TrimSuffix(name, filepath.Ext(file))
	}
	switch {
	case d.S3Bucket != "":
		return a.publishObject(ctx, s, d, file, cloudproto.Object{Kind: "s3", Bucket: d.S3Bucket, Key: d.S3Prefix + name}, pf)
	case d.GCSBucket != "":
		return a.publishObject(ctx, s, d, file, cloudproto.Object{Kind: "gcs", Bucket: d.GCSBucket, Key: d.GCSPrefix + name}, pf)
	}
	return a.publishVault(ctx, s, d, file, name, pf)
}

// publishObject uploads the encrypted file to S3 or GCS: encrypted again
// for the keys of recreation_rule, when it has keys (with its
// unencrypted_suffix or encrypted_suffix only, as sops), else as it is.
func (a *app) publishObject(ctx context.Context, s *session, d *rules.DestinationRule, file string, o cloudproto.Object, pf *publishFlags) error {
	f, err := a.openFile(file, &formatFlags{}, s)
	if err != nil {
		return err
	}
	var data []byte
	rec := d.Recreation
	if len(rec.KeyGroups) > 0 && len(rec.KeyGroups[0]) > 0 {
		if err := f.decryptOnly(ctx, &pf.df); err != nil {
			return err
		}
		groups, err := s.keys.GroupsFor(ctx, rec.KeyGroups)
		if err != nil {
			return err
		}
		tree := sops.Tree{Branches: f.tree.Branches, FilePath: file}
		sel := sops.Selection{UnencryptedSuffix: rec.UnencryptedSuffix, EncryptedSuffix: rec.EncryptedSuffix}
		if err := tree.Metadata.SetSelection(sel); err != nil {
			return cliapp.WithCode(cliapp.CodeConflictingParameters, err)
		}
		if err := sopsfile.EncryptTree(ctx, &tree, groups, rec.ShamirThreshold); err != nil {
			return cliapp.WithCode(cliapp.CodeErrorEncryptingTree, err)
		}
		if data, err = emitEncrypted(file, f.out, s.storeOpts, &tree); err != nil {
			return err
		}
	} else if data, err = a.readInput(file); err != nil {
		return err
	}
	if ok, err := a.confirmPublish(file, o.String(), pf); !ok || err != nil {
		return err
	}
	if err := a.Upload().Upload(ctx, o, data); err != nil {
		return cliapp.WithCode(cliapp.CodeGeneric, err)
	}
	return nil
}

// publishVault writes the decrypted file as a KV secret.
func (a *app) publishVault(ctx context.Context, s *session, d *rules.DestinationRule, file, name string, pf *publishFlags) error {
	f, err := a.openFile(file, &formatFlags{}, s)
	if err != nil {
		return err
	}
	if err := f.decryptOnly(ctx, &pf.df); err != nil {
		return err
	}
	if len(f.tree.Branches) == 0 {
		return cliapp.Codef(cliapp.CodeNeedAtLeastOneDocument, "the file has no documents")
	}
	js, err := formats.NewStore(formats.JSON, s.storeOpts).EmitPlainFile(f.tree.Branches[:1])
	if err != nil {
		return cliapp.WithCode(cliapp.CodeErrorDumpingTree, err)
	}
	var data map[string]any
	if err := json.Unmarshal(js, &data); err != nil {
		return cliapp.Codef(cliapp.CodeErrorDumpingTree, "the file is not a mapping of keys to values")
	}
	addr := d.VaultAddress
	if addr == "" {
		if addr = a.env("VAULT_ADDR"); addr == "" {
			addr = vault.DefaultAddress
		}
	}
	apiPath := vault.KVPath(d.VaultKVMount, d.VaultPath+name, d.VaultKVVersion)
	target := strings.TrimSuffix(addr, "/") + "/v1/" + apiPath
	if ok, err := a.confirmPublish(file, target, pf); !ok || err != nil {
		return err
	}
	written, err := s.keys.VaultOptions().WriteKV(ctx, addr, apiPath, d.VaultKVVersion, data)
	if err != nil {
		return cliapp.WithCode(cliapp.CodeGeneric, err)
	}
	if !written {
		a.Infof("%s is already up to date", target)
	}
	return nil
}

// confirmPublish asks "uploading FILE to DEST ? (y/n)" as sops does,
// until y or n; n cancels the file (with --recursive, the next one
// follows).
func (a *app) confirmPublish(file, target string, pf *publishFlags) (bool, error) {
	if pf.yes {
		return true, nil
	}
	abs, _ := filepath.Abs(file)
	for {
		fmt.Fprintf(a.Stdout, "uploading %s to %s ? (y/n): ", abs, target)
		line, err := pf.answers.ReadString('\n')
		switch strings.TrimSpace(line) {
		case "y":
			return true, nil
		case "n":
			if pf.recursive {
				fmt.Fprintf(a.Stdout, "Publication of %s canceled\n", abs)
				return false, nil
			}
			return false, cliapp.Codef(cliapp.CodeGeneric, "publication of %s canceled", abs)
		}
		if err != nil {
			return false, cliapp.Codef(cliapp.CodeGeneric, "no answer: pass -y to publish without asking")
		}
	}
}
