package cliapp

import "github.com/spf13/cobra"

func (a *App) completionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print the completion script for a shell. Object names (GitRepositories,
Kustomizations) are completed from the cluster in the current kubeconfig.`,
		Example: `  source <(lacre completion bash)
  lacre completion zsh > "${fpath[1]}/_lacre"
  lacre completion fish > ~/.config/fish/completions/lacre.fish
  lacre completion powershell | Out-String | Invoke-Expression`,
		Args:                  cobra.ExactArgs(1),
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.Stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.Stdout)
			case "fish":
				return root.GenFishCompletion(a.Stdout, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(a.Stdout)
			}
			return Codef(CodeGeneric, "unknown shell %q: use bash, zsh, fish or powershell", args[0])
		},
	}
}
