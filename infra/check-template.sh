#!/usr/bin/env bash
# The offline checks of template.yaml (issue 4), run by `make test`:
#   cfn-lint, `sam validate --lint`, and checkov (every failed check must be skipped in the
#   template with the resource's Metadata checkov skip comment, which says why).
# The tools live in virtual environments of their own under $INFRA_VENV (default
# .venv-infra): aws-sam-cli pins its own boto3, and checkov pins another one. Each is
# installed once, on first use (about a minute each), and again when its pin below changes.
# Nothing here talks to AWS; the Region is only what the tools need to be told.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
INFRA_VENV=${INFRA_VENV:-.venv-infra}
TEMPLATE=${TEMPLATE:-template.yaml}
SAM_CLI_PIN="aws-sam-cli==1.170.0" # brings cfn-lint 1.58 (what `sam validate --lint` runs)
CHECKOV_PIN="checkov==3.3.30"

# ensure_venv NAME REQUIREMENT: a venv at $INFRA_VENV/NAME with REQUIREMENT installed.
ensure_venv() {
    local dir="$INFRA_VENV/$1" stamp="$INFRA_VENV/$1/.installed-$2"
    if [ ! -f "$stamp" ]; then
        echo "installing $2 into $dir" >&2
        rm -rf "$dir"
        "$PYTHON" -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$2"
        touch "$stamp"
    fi
}

ensure_venv sam "$SAM_CLI_PIN"
ensure_venv checkov "$CHECKOV_PIN"

export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export SAM_CLI_TELEMETRY=0

echo "cfn-lint $TEMPLATE" >&2
"$INFRA_VENV/sam/bin/cfn-lint" "$TEMPLATE"
echo "sam validate --lint -t $TEMPLATE" >&2
"$INFRA_VENV/sam/bin/sam" validate --lint -t "$TEMPLATE"
echo "checkov -f $TEMPLATE" >&2
# --skip-download: no call to the vendor's API (offline); the checks ship in the package.
"$INFRA_VENV/checkov/bin/checkov" -f "$TEMPLATE" --framework cloudformation \
    --quiet --compact --skip-download
