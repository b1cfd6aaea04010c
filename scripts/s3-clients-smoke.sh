#!/usr/bin/env bash
# Smoke test of cellar's S3 API with the clients people drive drills with: Debian's
# awscli, s3cmd, rclone and boto3. It starts a two-cell cluster with `cellctl up` on
# 127.0.0.1, and with each client: makes a bucket; copies a small file and a 40 MiB
# file (multipart) up and down, byte-exact; lists; syncs a directory up and down; reads
# a byte range; deletes; removes the bucket. Then it stops the cluster with SIGINT.
#
#   scripts/s3-clients-smoke.sh            # installs the clients with apt-get if missing
#   KEEP=1 scripts/s3-clients-smoke.sh     # keep the work directory for a look
set -euo pipefail
cd "$(dirname "$0")/.."

AWS=/usr/bin/aws S3CMD=/usr/bin/s3cmd RCLONE=/usr/bin/rclone PY=/usr/bin/python3
if [ ! -x $AWS ] || [ ! -x $S3CMD ] || [ ! -x $RCLONE ] || ! $PY -c 'import boto3' 2>/dev/null; then
	echo "--- installing awscli, s3cmd, rclone and boto3"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq awscli s3cmd rclone python3-boto3 >/dev/null
fi

work=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -INT "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "work directory kept: $work"; fi
}
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
# check NAME CMD...: runs CMD, quietly unless it fails.
check() {
	local name=$1
	shift
	if "$@" >"$work/last.log" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/     /' "$work/last.log" | tail -20; fi
}

echo "--- building cellctl"
go build -o "$work/cellctl" ./cmd/cellctl

# A port below the ephemeral range that nothing listens on.
for _ in $(seq 50); do
	port=$((20000 + RANDOM % 10000))
	if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
done
endpoint="http://127.0.0.1:$port"

echo "--- starting a 2-cell cluster on $endpoint"
"$work/cellctl" up --data-dir "$work/data" --s3-addr "127.0.0.1:$port" --cells 2 --fast-gossip >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 240); do
	grep -q "S3 endpoint" "$work/up.log" && break
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "cellctl up exited:"
		cat "$work/up.log"
		exit 1
	fi
	sleep 0.5
done
if ! grep -q "S3 endpoint" "$work/up.log"; then
	echo "the cluster did not come up in 120s:"
	cat "$work/up.log"
	exit 1
fi
# The cluster made credentials of its own; cellctl credentials prints them again.
eval "$("$work/cellctl" credentials --data-dir "$work/data" --output env)"
access=$AWS_ACCESS_KEY_ID secret=$AWS_SECRET_ACCESS_KEY region=$AWS_DEFAULT_REGION
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION AWS_ENDPOINT_URL

# The files every client moves.
mkdir -p "$work/src/dir/sub"
head -c 1234 /dev/urandom >"$work/src/small"
head -c $((40 << 20)) /dev/urandom >"$work/src/big"
for f in a b c; do head -c $((RANDOM + 1)) /dev/urandom >"$work/src/dir/$f"; done
head -c 5000 /dev/urandom >"$work/src/dir/sub/d"
dd if="$work/src/big" of="$work/src/range" bs=1 skip=1000 count=2000 status=none

# same A B: the files are byte-identical.
same() { cmp -s "$1" "$2"; }

# --- aws CLI
echo "--- aws CLI $($AWS --version 2>&1 | cut -d' ' -f1)"
cat >"$work/aws-config" <<EOF
[default]
region = $region
s3 =
    addressing_style = path
EOF
aws() {
	AWS_ACCESS_KEY_ID=$access AWS_SECRET_ACCESS_KEY=$secret AWS_CONFIG_FILE="$work/aws-config" \
		AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true AWS_PAGER="" \
		$AWS --endpoint-url "$endpoint" "$@"
}
# multipart BUCKET KEY: the object's ETag is a multipart one ("...-N").
multipart() { aws s3api head-object --bucket "$1" --key "$2" | grep -q '"ETag": ".*-[0-9][0-9]*'; }
# lists PATTERN CMD...: CMD prints a line matching PATTERN.
lists() {
	local pattern=$1
	shift
	"$@" | grep -q "$pattern"
}
d="$work/aws"
mkdir -p "$d"
check "aws mb" aws s3 mb s3://aws-smoke
check "aws mb (a second bucket)" aws s3 mb s3://aws-smoke-copy
check "aws cp small up" aws s3 cp "$work/src/small" s3://aws-smoke/small
check "aws cp 40 MiB up (multipart)" aws s3 cp "$work/src/big" s3://aws-smoke/big
check "aws 40 MiB object is multipart" multipart aws-smoke big
check "aws cp small down" aws s3 cp s3://aws-smoke/small "$d/small"
check "aws small byte-exact" same "$work/src/small" "$d/small"
check "aws cp 40 MiB down" aws s3 cp s3://aws-smoke/big "$d/big"
check "aws 40 MiB byte-exact" same "$work/src/big" "$d/big"
check "aws ls" lists ' small$' aws s3 ls s3://aws-smoke/
check "aws sync up" aws s3 sync "$work/src/dir" s3://aws-smoke/dir
check "aws sync down" aws s3 sync s3://aws-smoke/dir "$d/dir"
check "aws synced tree identical" diff -r "$work/src/dir" "$d/dir"
check "aws copy 40 MiB between buckets (UploadPartCopy)" aws s3 cp s3://aws-smoke/big s3://aws-smoke-copy/big
check "aws copy is multipart" multipart aws-smoke-copy big
check "aws copy byte-exact" aws s3 cp s3://aws-smoke-copy/big "$d/big-copy"
check "aws copy identical" same "$work/src/big" "$d/big-copy"
check "aws rb --force the copy" aws s3 rb --force s3://aws-smoke-copy
check "aws ranged get" aws s3api get-object --bucket aws-smoke --key big --range bytes=1000-2999 "$d/range"
check "aws range byte-exact" same "$work/src/range" "$d/range"
check "aws rm" aws s3 rm --recursive s3://aws-smoke
check "aws rb" aws s3 rb s3://aws-smoke

# --- s3cmd
echo "--- $($S3CMD --version 2>&1)"
cat >"$work/s3cfg" <<EOF
[default]
access_key = $access
secret_key = $secret
host_base = 127.0.0.1:$port
host_bucket = 127.0.0.1:$port
bucket_location = $region
use_https = False
signature_v2 = False
multipart_chunk_size_mb = 15
EOF
s3cmd() { $S3CMD -c "$work/s3cfg" --no-progress "$@"; }
d="$work/s3cmd"
mkdir -p "$d"
check "s3cmd mb" s3cmd mb s3://s3cmd-smoke
check "s3cmd put small" s3cmd put "$work/src/small" s3://s3cmd-smoke/small
check "s3cmd put 40 MiB (multipart)" s3cmd put "$work/src/big" s3://s3cmd-smoke/big
check "s3cmd 40 MiB object is multipart" multipart s3cmd-smoke big
check "s3cmd get small" s3cmd get s3://s3cmd-smoke/small "$d/small"
check "s3cmd small byte-exact" same "$work/src/small" "$d/small"
check "s3cmd get 40 MiB" s3cmd get s3://s3cmd-smoke/big "$d/big"
check "s3cmd 40 MiB byte-exact" same "$work/src/big" "$d/big"
check "s3cmd ls" lists 's3://s3cmd-smoke/small$' s3cmd ls s3://s3cmd-smoke/
check "s3cmd sync up" s3cmd sync "$work/src/dir/" s3://s3cmd-smoke/dir/
check "s3cmd sync down" s3cmd sync s3://s3cmd-smoke/dir/ "$d/dir/"
check "s3cmd synced tree identical" diff -r "$work/src/dir" "$d/dir"
# A ranged get: --continue asks for the rest of a partly downloaded file with a Range.
head -c 3000 "$work/src/big" >"$d/partial"
check "s3cmd ranged get (--continue)" s3cmd get --continue s3://s3cmd-smoke/big "$d/partial"
check "s3cmd range byte-exact" same "$work/src/big" "$d/partial"
check "s3cmd ls with Signature V2" s3cmd --signature-v2 ls s3://s3cmd-smoke/dir/
check "s3cmd del" s3cmd del --recursive --force s3://s3cmd-smoke
check "s3cmd rb" s3cmd rb s3://s3cmd-smoke

# --- rclone
echo "--- $($RCLONE version 2>/dev/null | head -1)"
rclone() {
	env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null \
		RCLONE_CONFIG_CELLAR_TYPE=s3 RCLONE_CONFIG_CELLAR_PROVIDER=Other RCLONE_CONFIG_CELLAR_ENV_AUTH=false \
		RCLONE_CONFIG_CELLAR_ACCESS_KEY_ID="$access" RCLONE_CONFIG_CELLAR_SECRET_ACCESS_KEY="$secret" \
		RCLONE_CONFIG_CELLAR_ENDPOINT="$endpoint" RCLONE_CONFIG_CELLAR_REGION="$region" \
		RCLONE_CONFIG_CELLAR_FORCE_PATH_STYLE=true \
		$RCLONE --s3-upload-cutoff 10M --s3-chunk-size 5M --retries 1 --low-level-retries 1 "$@"
}
d="$work/rclone"
mkdir -p "$d"
check "rclone mkdir" rclone mkdir cellar:rclone-smoke
check "rclone copy small up" rclone copyto "$work/src/small" cellar:rclone-smoke/small
check "rclone copy 40 MiB up (multipart)" rclone copyto "$work/src/big" cellar:rclone-smoke/big
check "rclone 40 MiB object is multipart" multipart rclone-smoke big
check "rclone copy small down" rclone copyto cellar:rclone-smoke/small "$d/small"
check "rclone small byte-exact" same "$work/src/small" "$d/small"
check "rclone copy 40 MiB down" rclone copyto cellar:rclone-smoke/big "$d/big"
check "rclone 40 MiB byte-exact" same "$work/src/big" "$d/big"
check "rclone ls" lists ' small$' rclone ls cellar:rclone-smoke
check "rclone sync up" rclone sync "$work/src/dir" cellar:rclone-smoke/dir
check "rclone sync down" rclone sync cellar:rclone-smoke/dir "$d/dir"
check "rclone synced tree identical" diff -r "$work/src/dir" "$d/dir"
rclone_range() { rclone cat --offset 1000 --count 2000 cellar:rclone-smoke/big >"$d/range"; }
check "rclone ranged get (cat --offset --count)" rclone_range
check "rclone range byte-exact" same "$work/src/range" "$d/range"
check "rclone delete" rclone delete cellar:rclone-smoke
check "rclone rmdir" rclone rmdir cellar:rclone-smoke

# --- boto3
echo "--- boto3 $($PY -c 'import boto3; print(boto3.__version__)')"
rc=0
boto3_out=$(CELLAR_ENDPOINT=$endpoint AWS_ACCESS_KEY_ID=$access AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=$region \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	$PY scripts/s3-boto3-smoke.py "$work" 2>&1) || rc=$?
echo "$boto3_out"
n_ok=$(grep -c '^ok ' <<<"$boto3_out" || true)
n_fail=$(grep -c '^FAIL' <<<"$boto3_out" || true)
if [ "$rc" != 0 ] && [ "$n_fail" = 0 ]; then n_fail=1; fi # it died before its checks
passed=$((passed + n_ok)) failed=$((failed + n_fail))

echo "--- stopping the cluster"
kill -INT "$pid"
if wait "$pid"; then ok "cluster stopped on SIGINT"; else bad "cluster stopped on SIGINT"; tail -20 "$work/up.log"; fi
pid=""

echo "s3-clients-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
