package cli

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// sops 3.13 also has HuaweiCloud KMS master keys; lacre does not. Its flags
// and SOPS_HUAWEICLOUD_KMS_IDS exist so that they are refused by name,
// never ignored.

const hckmsEnv = "SOPS_HUAWEICLOUD_KMS_IDS"

var errHCKMS = errors.New("HuaweiCloud KMS keys are not supported by lacre (see docs/cli.md)")

// hckmsValue is a flag value that refuses every value.
type hckmsValue struct{}

func (hckmsValue) String() string     { return "" }
func (hckmsValue) Type() string       { return "string" }
func (hckmsValue) Set(v string) error { return errHCKMS }

// refuseHCKMS adds the HuaweiCloud KMS flags names to f, refusing any value.
func refuseHCKMS(f *pflag.FlagSet, names ...string) {
	for _, n := range names {
		f.Var(hckmsValue{}, n, "HuaweiCloud KMS key IDs: not supported by lacre (refused)")
	}
}

// checkHCKMSEnv refuses SOPS_HUAWEICLOUD_KMS_IDS when encrypting.
func (a *app) checkHCKMSEnv() error {
	if a.env(hckmsEnv) != "" {
		return cliapp.WithCode(cliapp.CodeGeneric, errors.New(hckmsEnv+" is set: "+errHCKMS.Error()))
	}
	return nil
}
