package demo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lacre/lacre/internal/devcluster"
)

// keyFile writes the cluster's age identity (0600) in the working
// directory, once, and returns its path.
func (d *demo) keyFile() (string, error) {
	p := filepath.Join(d.work, "age.agekey")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	_, err = fmt.Fprintf(f, "# the demo cluster's age identity (removed when the demo stops)\n%s\n", d.id.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return p, err
}

// keep records the running demo in the working directory (so that
// `lacre dev down --dir` stops it), prints how to use it, and waits for
// ctx to end.
func (d *demo) keep(ctx context.Context) error {
	keyFile, err := d.keyFile()
	if err != nil {
		return err
	}
	st := devcluster.NewState(d.cl.Pids(), d.cl.Host(), d.cl.Kubeconfig())
	if err := devcluster.WriteState(d.work, st); err != nil {
		return err
	}
	clone := filepath.Join(os.TempDir(), "lacre-demo-secrets")
	d.step("the playground stays up: control plane, Git server and controllers")
	fmt.Fprintf(d.opts.Out, `    export KUBECONFIG=%s
    export SOPS_AGE_KEY_FILE=%s
    Git repository: %s

  Next, try:
    lacre get kustomizations -A
    kubectl get secret basic-auth -o jsonpath='{.data.password}' | base64 -d
    git clone %s %s && cd %s
    lacre edit %s/basic-auth.yaml            # change the password
    git commit -qam "new password" && git push -q
    lacre reconcile kustomization %s --with-source
    kubectl get secret basic-auth -o jsonpath='{.data.password}' | base64 -d

  Stop with Ctrl-C, or: lacre dev down --dir %s
  (everything the demo wrote under %s is removed then; your clone is yours to delete)
`, st.Kubeconfig, keyFile, d.repo.URL(), d.repo.URL(), clone, clone, secretPath, objName, d.work, d.work)
	<-ctx.Done()
	return nil
}
