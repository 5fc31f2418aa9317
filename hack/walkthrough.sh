#!/usr/bin/env bash
# A CLI walkthrough: generate an age key, write a .sops.yaml with the
# seed guide's rule, encrypt a Kubernetes Secret, show it, decrypt it, change
# one value, and show that only that value's ciphertext changed.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "building lacre"
go build -o "$work/lacre" ./cmd/lacre
lacre="$work/lacre"
cd "$work"

step "lacre keygen -o age.agekey"
"$lacre" keygen -o age.agekey 2>pub.txt
pub=$(sed -n 's/^Public key: //p' pub.txt)
echo "recipient: $pub"

step "a .sops.yaml with the seed guide's rule"
cat > .sops.yaml <<YAML
creation_rules:
  - path_regex: .*.yaml
    encrypted_regex: ^(data|stringData)$
    age: $pub
YAML
cat .sops.yaml

step "a Secret, encrypted in place (lacre encrypt -i secret.yaml)"
cat > secret.yaml <<'YAML'
apiVersion: v1
kind: Secret
metadata:
    name: demo-secret
    namespace: default
stringData:
    username: admin
    password: s3cr3t-from-the-demo
YAML
"$lacre" encrypt -i secret.yaml
cat secret.yaml

step "decrypted with SOPS_AGE_KEY_FILE=age.agekey"
SOPS_AGE_KEY_FILE=age.agekey "$lacre" decrypt secret.yaml

step "change the password; only its ciphertext changes"
cp secret.yaml before.yaml
SOPS_AGE_KEY_FILE=age.agekey "$lacre" set secret.yaml '["stringData"]["password"]' '"rotated-by-the-demo"'
diff before.yaml secret.yaml | grep -E '^[<>] +(username|password):' || true
SOPS_AGE_KEY_FILE=age.agekey "$lacre" decrypt --extract '["stringData"]["password"]' secret.yaml
echo
step "done"
