#!/usr/bin/env bash
# OneEye deployment: the local demo, AWS, and pre-flight checks. Run ./deploy.sh --help.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
DEMO_VIDEO="var/local/demo/branch-entrance.mp4"

usage() {
  cat <<'EOF'
Usage:
  ./deploy.sh local [--duration S] [--fresh-video] [oneeye up options…]
      The whole system on this machine, no AWS account: installs into .venv if needed
      (make install), generates the demo 'branch entrance' video (demo customers and
      strangers) under var/local/demo/ if absent, then runs `oneeye up` with the edge on it.
      Prints the dashboard URL and a demo login generated at start. Ctrl-C stops everything;
      --duration S stops by itself. Any other option goes to `oneeye up` (see
      `.venv/bin/oneeye up --help`, e.g. --mqtt-url mqtt://127.0.0.1:1883, --http-port 9080,
      --public-host 192.168.1.20 to open the upload page on a phone).

  ./deploy.sh aws --stack NAME --region REGION --thing-group GROUP
                  --customer-api-url https://… [--bucket ARTIFACT_BUCKET]
                  [--component-version X.Y.Z] [--profile PROFILE] [--dry-run]
      Deploys to AWS (needs the sam, aws and gdk CLIs and AWS credentials):
        1. python cloud/build.py           (Lambda zips with the oneeye package)
        2. sam build + sam deploy          (stack NAME; image repo for the indexer)
        3. python edge/build.py; gdk component build; gdk component publish
        4. the gallery signing key: the Secrets Manager secret oneeye/gallery-signing-key
           (the template's GallerySigningKeySecretName) is created with a new Ed25519 key
           if absent; its public half is put into the component configuration
        5. aws greengrassv2 create-deployment to thing group GROUP: com.oneeye.edge with the
           stack's outputs (gallery bucket) and gallery_sync.public_key merged into its
           configuration, and
           aws.greengrass.ShadowManager syncing each device's shadow oneeye-config
      Nothing touches AWS unless --stack, --region and --thing-group are all given.
      --dry-run prints the commands instead of running them, and the deployment document
      (with placeholder stack outputs) on stdout.

  ./deploy.sh device-config --thing NAME --region REGION --site SITE_ID
                            --camera CAMERA_ID=SOURCE [--camera …] [--profile P] [--dry-run]
      One device's own site and cameras: writes its named shadow oneeye-config (desired
      state; the running component picks it up without a redeploy) and the same values as
      thing attributes site_id and cameras (read by the cloud's trust registry).

  ./deploy.sh check
      Pre-flight checks without AWS: cfn-lint on cloud/template.yaml and validation of the
      Greengrass recipe (tests/test_recipe.py).

  ./deploy.sh --help
EOF
}

die() { echo "deploy.sh: error: $*" >&2; exit 2; }
step() { echo "==> $*" >&2; }

ensure_venv() {
  if [[ ! -x "$VENV/bin/oneeye" ]]; then
    command -v make >/dev/null || die "make is needed to install (apt-get install make)"
    step "first run: installing OneEye into .venv (make install; a few minutes)"
    make install
  fi
}

cmd_local() {
  local up_args=() fresh=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --fresh-video) fresh=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) up_args+=("$1"); shift ;;
    esac
  done
  ensure_venv
  # The gallery signing key pair: the private key stays in var/local (0600, never
  # committed); `oneeye up` gives the edge its public half (gallery_sync.public_key).
  step "gallery signing key var/local/gallery-signing.key (public: $("$VENV/bin/python" -m oneeye.signing ensure var/local/gallery-signing.key))"
  if [[ $fresh -eq 1 || ! -s "$DEMO_VIDEO" ]]; then
    step "making the demo video $DEMO_VIDEO (demo customers and strangers)"
    "$VENV/bin/python" -m oneeye.local.demo "$DEMO_VIDEO" --customers 6 --strangers 3 --force
  fi
  step "starting the local stack with the edge on the demo video"
  step "amber alert demo: on the phone page, upload $(dirname "$DEMO_VIDEO")/missing-person-example.jpg"
  exec "$VENV/bin/oneeye" up --edge-source "$DEMO_VIDEO" ${up_args[@]+"${up_args[@]}"}
}

need() {  # need CLI HOW [dry]: missing tools stop a real deployment, only warn a dry run
  command -v "$1" >/dev/null 2>&1 && return 0
  if [[ "${3:-0}" -eq 1 ]]; then echo "deploy.sh: warning: '$1' not found ($2)" >&2; return 0; fi
  die "'$1' CLI not found on PATH: $2"
}

cmd_aws() {
  local stack="" region="" group="" bucket="" version="" profile="" api_url="" dry=0
  local signing_secret="oneeye/gallery-signing-key" pem=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --stack) stack="${2:?--stack needs a value}"; shift 2 ;;
      --region) region="${2:?--region needs a value}"; shift 2 ;;
      --thing-group) group="${2:?--thing-group needs a value}"; shift 2 ;;
      --bucket) bucket="${2:?--bucket needs a value}"; shift 2 ;;
      --component-version) version="${2:?--component-version needs a value}"; shift 2 ;;
      --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
      --customer-api-url) api_url="${2:?--customer-api-url needs a value}"; shift 2 ;;
      --dry-run) dry=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option for aws: $1 (see --help)" ;;
    esac
  done
  [[ -n "$stack" && -n "$region" && -n "$group" ]] \
    || die "aws needs --stack NAME --region REGION --thing-group GROUP (nothing was deployed)"
  [[ -n "$api_url" ]] || die "aws needs --customer-api-url https://… (the bank's customer API)"
  need sam "install the AWS SAM CLI (https://docs.aws.amazon.com/serverless-application-model/)" "$dry"
  need aws "install the AWS CLI v2" "$dry"
  need gdk "install the Greengrass Development Kit: pip install git+https://github.com/aws-greengrass/aws-greengrass-gdk-cli.git" "$dry"
  [[ -f edge/build.py && -f edge/gdk-config.json ]] || die "edge/build.py or edge/gdk-config.json missing"
  export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
  [[ -n "$profile" ]] && export AWS_PROFILE="$profile"
  run() { if [[ $dry -eq 1 ]]; then { printf '+'; printf ' %q' "$@"; echo; } >&2; else "$@"; fi; }
  local py="$VENV/bin/python"; [[ -x "$py" ]] || py="python3"

  step "1/4 building the Lambda packages (cloud/build.py)"
  run "$py" cloud/build.py
  step "2/4 sam build + sam deploy of stack $stack in $region"
  run sam build --template-file cloud/template.yaml --build-dir .aws-sam/build
  local s3_args=(--resolve-s3)
  [[ -n "$bucket" ]] && s3_args=(--s3-bucket "$bucket")
  run sam deploy --template-file .aws-sam/build/template.yaml --stack-name "$stack" \
    --region "$region" --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM \
    --resolve-image-repos "${s3_args[@]}" --no-fail-on-empty-changeset \
    --parameter-overrides "CustomerApiUrl=$api_url"
  step "3/4 building and publishing the Greengrass component"
  run "$py" edge/build.py
  local publish_args=(--region "$region")
  [[ -n "$bucket" ]] && publish_args+=(--bucket "$bucket")
  (cd edge && run gdk component build && run gdk component publish "${publish_args[@]}")
  local component
  component="$("$py" -c 'import json; print(next(iter(json.load(open("edge/gdk-config.json"))["component"])))')"
  if [[ -z "$version" ]]; then
    if [[ $dry -eq 1 ]]; then
      version="X.Y.Z"
    else
      version="$(aws greengrassv2 list-component-versions --region "$region" \
        --arn "arn:aws:greengrass:$region:$(aws sts get-caller-identity --query Account --output text):components:$component" \
        --query 'componentVersions[0].componentVersion' --output text)"
    fi
  fi
  step "gallery signing key: secret $signing_secret (Secrets Manager; never in the repo)"
  local public_key
  if [[ $dry -eq 1 ]]; then
    public_key="$("$py" -m oneeye.signing generate | "$py" -m oneeye.signing public)"
    echo "+ (dry run) aws secretsmanager create-secret --name $signing_secret if absent" >&2
  elif pem="$(aws secretsmanager get-secret-value --secret-id "$signing_secret" \
                --query SecretString --output text 2>/dev/null)"; then
    public_key="$(printf '%s' "$pem" | "$py" -m oneeye.signing public)"
  else
    # A new key pair: the private half goes straight into the secret (through a 0600
    # temp file, removed at once); only the public half leaves this step.
    local keyfile; keyfile="$(umask 077; mktemp)"
    "$py" -m oneeye.signing generate >"$keyfile"
    aws secretsmanager create-secret --name "$signing_secret" \
      --description "OneEye gallery indexer Ed25519 signing key (PKCS#8 PEM)" \
      --secret-string "file://$keyfile" >/dev/null
    public_key="$("$py" -m oneeye.signing public <"$keyfile")"
    rm -f "$keyfile"
  fi
  unset pem
  step "edges verify galleries with public key $public_key"
  step "4/4 deploying $component $version to thing group $group"
  local account="ACCOUNT" outputs shadow_manager doc
  outputs="$(mktemp)"; doc="$(mktemp)"
  if [[ $dry -eq 1 ]]; then
    # Placeholders for what the stack would output; a real run reads them.
    echo '[{"OutputKey": "BucketName", "OutputValue": "STACK-OUTPUT-BucketName"}]' >"$outputs"
    shadow_manager="2.3.0"
  else
    account="$(aws sts get-caller-identity --query Account --output text)"
    aws cloudformation describe-stacks --stack-name "$stack" --region "$region" \
      --query 'Stacks[0].Outputs' --output json >"$outputs"
    shadow_manager="$(aws greengrassv2 list-component-versions --region "$region" \
      --arn "arn:aws:greengrass:$region:aws:components:aws.greengrass.ShadowManager" \
      --query 'componentVersions[0].componentVersion' --output text)"
  fi
  "$py" -m oneeye.edge.device.fleet deployment --outputs "$outputs" \
    --target-arn "arn:aws:iot:$region:$account:thinggroup/$group" \
    --name "oneeye-$stack-$version" --component "$component" --version "$version" \
    --shadow-manager-version "$shadow_manager" --gallery-public-key "$public_key" >"$doc"
  if [[ $dry -eq 1 ]]; then cat "$doc"; fi
  run aws greengrassv2 create-deployment --region "$region" --cli-input-json "file://$doc"
  rm -f "$outputs" "$doc"
  step "done: stack outputs with: aws cloudformation describe-stacks --stack-name $stack --region $region"
  step "next: give each device its site and cameras: ./deploy.sh device-config --thing NAME …"
}

cmd_device_config() {
  local thing="" region="" site="" profile="" dry=0 cameras=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --thing) thing="${2:?--thing needs a value}"; shift 2 ;;
      --region) region="${2:?--region needs a value}"; shift 2 ;;
      --site) site="${2:?--site needs a value}"; shift 2 ;;
      --camera) cameras+=(--camera "${2:?--camera needs CAMERA_ID=SOURCE}"); shift 2 ;;
      --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
      --dry-run) dry=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option for device-config: $1 (see --help)" ;;
    esac
  done
  [[ -n "$thing" && -n "$region" && -n "$site" && ${#cameras[@]} -gt 0 ]] \
    || die "device-config needs --thing NAME --region REGION --site SITE_ID --camera ID=SOURCE"
  need aws "install the AWS CLI v2" "$dry"
  export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
  [[ -n "$profile" ]] && export AWS_PROFILE="$profile"
  run() { if [[ $dry -eq 1 ]]; then { printf '+'; printf ' %q' "$@"; echo; } >&2; else "$@"; fi; }
  local py="$VENV/bin/python"; [[ -x "$py" ]] || py="python3"
  local work; work="$(mktemp -d)"
  local current=()
  if [[ $dry -eq 0 ]] && aws iot-data get-thing-shadow --thing-name "$thing" \
      --shadow-name oneeye-config "$work/current.json" >/dev/null 2>&1; then
    current=(--current "$work/current.json")   # cameras no longer listed get deleted
  fi
  "$py" -m oneeye.edge.device.fleet device --site "$site" "${cameras[@]}" ${current[@]+"${current[@]}"} \
    --shadow-out "$work/shadow.json" --attributes-out "$work/attributes.json"
  step "shadow oneeye-config of $thing: $(cat "$work/shadow.json")"
  run aws iot-data update-thing-shadow --thing-name "$thing" --shadow-name oneeye-config \
    --cli-binary-format raw-in-base64-out --payload "file://$work/shadow.json" /dev/null
  step "thing attributes of $thing (trust registry): $(cat "$work/attributes.json")"
  run aws iot update-thing --thing-name "$thing" --attribute-payload "file://$work/attributes.json"
  rm -rf "$work"
}

cmd_check() {
  ensure_venv
  step "cfn-lint cloud/template.yaml"
  "$VENV/bin/cfn-lint" cloud/template.yaml
  step "Greengrass recipe validation"
  if [[ -f tests/test_recipe.py ]]; then
    "$VENV/bin/python" -m pytest -q tests/test_recipe.py
  else
    die "tests/test_recipe.py not found (the recipe cannot be validated)"
  fi
  step "checks passed"
}

main() {
  [[ $# -gt 0 ]] || { usage; exit 2; }
  local cmd="$1"; shift
  case "$cmd" in
    local) cmd_local "$@" ;;
    aws) cmd_aws "$@" ;;
    device-config) cmd_device_config "$@" ;;
    check) cmd_check "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
