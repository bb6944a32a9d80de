#!/usr/bin/env bash
# Build the GPU worker image (Dockerfile) and push it to ECR; print its URI for the stack's
# WorkerImageUri parameter. The URI is the only line on stdout, so this works:
#
#   IMAGE=$(infra/build-and-push.sh --engine paddleocr-vl)
#   sam deploy --parameter-overrides "WorkerImageUri=$IMAGE Engine=paddleocr-vl"
#
# The repository is created when missing (scan on push, immutable tags, AES-256). The tag is
# <engine>[-<vlm model>]-<git commit>, with -dirty-<UTC time> added when the work tree has
# uncommitted changes; an image already pushed under a clean tag is not built again.
# Needs docker (with BuildKit), the AWS CLI v2 and git; credentials from the usual chain or
# --profile. docs/deploy.md walks through it.
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: infra/build-and-push.sh [--engine paddleocr-vl|vlm] [--vlm-model NAME]
                               [--repository NAME] [--region REGION] [--profile PROFILE]
  --engine      the OCR engine baked into the image (default paddleocr-vl); the stack's
                Engine parameter must name the same one
  --vlm-model   with --engine vlm: the model profile (default paddleocr-vl)
  --repository  ECR repository (default pagedrop-worker)
  --region      AWS region (default $AWS_REGION, $AWS_DEFAULT_REGION, or the profile's)
  --profile     AWS profile for credentials (default: the usual chain)
EOF
  exit 2
}

engine=paddleocr-vl
vlm_model=paddleocr-vl
repository=pagedrop-worker
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}

while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine=${2:?--engine needs a value}; shift 2 ;;
    --vlm-model) vlm_model=${2:?--vlm-model needs a value}; shift 2 ;;
    --repository) repository=${2:?--repository needs a value}; shift 2 ;;
    --region) region=${2:?--region needs a value}; shift 2 ;;
    --profile) export AWS_PROFILE=${2:?--profile needs a value}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

case "$engine" in
  paddleocr-vl | vlm) ;;
  *) echo "--engine is paddleocr-vl or vlm, not '$engine'" >&2; exit 2 ;;
esac

for tool in docker aws git; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done

root=$(cd "$(dirname "$0")/.." && pwd)
region=${region:-$(aws configure get region || true)}
[ -n "$region" ] || { echo "no AWS region: pass --region or set AWS_REGION" >&2; exit 1; }
export AWS_REGION=$region AWS_DEFAULT_REGION=$region
account=$(aws sts get-caller-identity --query Account --output text)
registry="$account.dkr.ecr.$region.amazonaws.com"

tag=$engine
[ "$engine" = vlm ] && tag="$tag-$vlm_model"
tag="$tag-$(git -C "$root" rev-parse --short=12 HEAD)"
if [ -n "$(git -C "$root" status --porcelain)" ]; then
  tag="$tag-dirty-$(date -u +%Y%m%dT%H%M%SZ)"
fi
image="$registry/$repository:$tag"

if ! aws ecr describe-repositories --repository-names "$repository" >/dev/null 2>&1; then
  echo "creating ECR repository $repository in $region" >&2
  aws ecr create-repository --repository-name "$repository" \
    --image-scanning-configuration scanOnPush=true \
    --image-tag-mutability IMMUTABLE \
    --encryption-configuration encryptionType=AES256 >/dev/null
fi

if aws ecr describe-images --repository-name "$repository" \
    --image-ids imageTag="$tag" >/dev/null 2>&1; then
  echo "$image is already in ECR: not building it again" >&2
  echo "$image"
  exit 0
fi

aws ecr get-login-password | docker login --username AWS --password-stdin "$registry" >&2

echo "building $image (the model weights are downloaded during the build)" >&2
docker build --platform linux/amd64 \
  --build-arg ENGINE="$engine" --build-arg VLM_MODEL="$vlm_model" \
  --tag "$image" "$root" >&2
docker push "$image" >&2

echo "pushed; pass it to the stack: sam deploy --parameter-overrides" \
  "\"WorkerImageUri=$image Engine=$engine\"" >&2
echo "$image"
