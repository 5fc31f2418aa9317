package cliapp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"
)

// Companion is the executable that holds the cluster commands. lacre runs
// it for them, so that the file commands start without linking (and
// initializing) the Kubernetes client libraries.
const Companion = "lacre-cluster"

// companionInstall says how to install the companion.
const companionInstall = "go install github.com/lacre/lacre/cmd/lacre-cluster@latest"

// companionEnv, when set, is the companion's path (for tests and unusual
// installs); it is not looked for elsewhere then.
const companionEnv = "LACRE_CLUSTER_BIN"

// ClusterCommand is how lacre --help lists a command of the companion.
type ClusterCommand struct {
	Name    string
	Short   string
	Aliases []string
}

// ClusterCommands lists the companion's commands. A test of package
// cluster checks it against the real commands.
func ClusterCommands() []ClusterCommand {
	return []ClusterCommand{
		{Name: "build", Short: "Build a Kustomization or an OCI artifact from a local directory"},
		{Name: "controller", Short: "Run the GitOps controllers against the cluster in KUBECONFIG or in-cluster"},
		{Name: "create", Short: "Create sources, Kustomizations and decryption Secrets"},
		{Name: "delete", Short: "Delete sources and Kustomizations"},
		{Name: "demo", Short: "Run the seed guide end to end on an embedded local cluster"},
		{Name: "dev", Short: "A local control plane with lacre's controllers, kept in a directory"},
		{Name: "diff", Short: "Show what a local directory would change in the cluster, or how it differs from an OCI artifact"},
		{Name: "events", Short: "List the Kubernetes events of GitRepositories, OCIRepositories, Buckets and Kustomizations, oldest first"},
		{Name: "export", Short: "Print objects as YAML without status"},
		{Name: "get", Short: "List sources and Kustomizations with their status"},
		{Name: "install", Short: "Install the CRDs and the lacre controller in a cluster"},
		{Name: "list", Short: "List the OCI artifacts of a container registry repository"},
		{Name: "man", Short: "Write man pages for every command"},
		{Name: "pull", Short: "Pull an OCI artifact from a container registry"},
		{Name: "push", Short: "Push an OCI artifact to a container registry"},
		{Name: "reconcile", Short: "Ask for an immediate reconcile and wait for it"},
		{Name: "resume", Short: "Resume reconciliation"},
		{Name: "suspend", Short: "Suspend reconciliation"},
		{Name: "tag", Short: "Tag an OCI artifact in its container registry"},
		{Name: "tree", Short: "Print the objects a Kustomization applied, as a tree"},
		{Name: "uninstall", Short: "Remove the lacre controller, its CRDs and every GitRepository and Kustomization"},
	}
}

// KeyServiceCommand is sops's keyservice command, which lacre-cluster
// serves (it links gRPC).
var KeyServiceCommand = ClusterCommand{Name: "keyservice", Short: "Serve sops's key service (gRPC) with this process's keys"}

// companionAnnotation marks the stub commands.
const companionAnnotation = "lacre-cluster"

// CompanionStubs is lacre's Extension: it adds the commands that stand in
// for the companion's, and run it.
func CompanionStubs(a *App, root *cobra.Command) {
	var out []*cobra.Command
	for _, cc := range append(ClusterCommands(), KeyServiceCommand) {
		name := cc.Name
		out = append(out, &cobra.Command{
			Use:                name,
			Short:              cc.Short,
			Aliases:            cc.Aliases,
			Annotations:        map[string]string{companionAnnotation: "1"},
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.runCompanion(cmd.Context(), name)
			},
		})
	}
	root.AddCommand(out...)
}

// companionCommand returns the stub that args run, also through "help"
// and cobra's shell completion requests, or nil.
func companionCommand(root *cobra.Command, args []string) *cobra.Command {
	if len(args) > 0 {
		switch args[0] {
		case "help", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			args = args[1:]
		}
	}
	c, _, err := root.Find(args)
	if err != nil {
		return nil
	}
	for ; c != nil; c = c.Parent() {
		if c.Annotations[companionAnnotation] != "" {
			return c
		}
	}
	return nil
}

// runCompanion runs the companion with this run's arguments in place of
// this process (on unix) or as a child whose exit code is passed on.
func (a *App) runCompanion(ctx context.Context, name string) error {
	exe, path := a.findCompanion()
	if path == "" {
		return Codef(CodeGeneric, "%q is part of %s, which was not found %s (install: %s)", name, Companion, a.companionWhere(exe), companionInstall)
	}
	return a.execCompanion(ctx, path)
}

// companionWhere says where the companion was looked for; exe is the
// running executable's path.
func (a *App) companionWhere(exe string) string {
	if v := a.env(companionEnv); v != "" {
		return fmt.Sprintf("at %s=%q", companionEnv, v)
	}
	if exe == "" {
		return "next to this executable or in PATH"
	}
	return "next to " + exe + " or in PATH"
}

// locateCompanion is findCompanion for cloudproto.Companion: the path, or
// "" and where it was looked for.
func (a *App) locateCompanion() (path, where string) {
	exe, path := a.findCompanion()
	if path == "" {
		return "", a.companionWhere(exe)
	}
	return path, ""
}

// findCompanion looks for the companion next to the running executable
// (symlinks resolved), then in PATH. exe is the executable's path.
func (a *App) findCompanion() (exe, path string) {
	if p := a.env(companionEnv); p != "" {
		if isExecutable(p) {
			return "", p
		}
		return "", ""
	}
	file := Companion
	if runtime.GOOS == "windows" {
		file += ".exe"
	}
	if e, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(e); err == nil {
			e = r
		}
		exe = e
		if p := filepath.Join(filepath.Dir(e), file); isExecutable(p) {
			return exe, p
		}
	}
	for _, dir := range filepath.SplitList(a.env("PATH")) {
		// Relative entries are skipped, as os/exec does.
		if !filepath.IsAbs(dir) {
			continue
		}
		if p := filepath.Join(dir, file); isExecutable(p) {
			return exe, p
		}
	}
	return exe, ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	return runtime.GOOS == "windows" || st.Mode().Perm()&0o111 != 0
}

// companionError wraps a failure to start the companion.
func companionError(path string, err error) error {
	return Codef(CodeGeneric, "run %s: %v", path, err)
}
