# Sourced by the install scripts: apt_install WHY PACKAGE... installs
# Debian packages (as root, with apt-get), or says what to install and
# exits when this machine cannot.
apt_install() {
    local why="$1"
    shift
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "$why: install $* (or an equivalent) and run this again" >&2
        exit 1
    fi
    echo "==> installing $* (Debian): $why" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Java's post-install step expects the man page folder (slim images drop it).
    mkdir -p /usr/share/man/man1
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
