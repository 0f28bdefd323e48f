#!/usr/bin/env bash
# bases.sh - builds the base images the Dockerfiles name (node:20-bookworm-slim, debian:sid-slim)
# from debootstrap root filesystems, for machines that cannot pull from a registry. The images are
# stand-ins, shaped like the official ones where the Dockerfiles rely on it (Node 20 and npm under
# /usr/local, a `node` user with uid 1000, no apt lists); the Dockerfiles stay written for the real ones.
# Sourced by run.sh; needs root, debootstrap and podman (with CONTAINERS_CONF already exported).
#
#   CT_CACHE=/var/cache/call-actions-containers   rootfs tarballs, kept between runs
#   CT_MIRROR=http://deb.debian.org/debian

CT_CACHE=${CT_CACHE:-/var/cache/call-actions-containers}
CT_MIRROR=${CT_MIRROR:-http://deb.debian.org/debian}

# a minbase rootfs of SUITE as a tarball in the cache, made once (built aside, renamed when complete)
rootfs_tarball() {
  local suite=$1 tar="$CT_CACHE/$1-minbase.tar" dir
  if [ ! -s "$tar" ]; then
    mkdir -p "$CT_CACHE"
    dir=$(mktemp -d "$CT_CACHE/rootfs-$suite.XXXXXX")
    say "debootstrap --variant=minbase $suite (cached afterwards in $tar)"
    debootstrap --variant=minbase "$suite" "$dir" "$CT_MIRROR" > "$CT_LOGS/debootstrap-$suite.log" 2>&1 \
      || { tail -20 "$CT_LOGS/debootstrap-$suite.log" >&2; rm -rf --one-file-system "$dir"; die "debootstrap $suite failed"; }
    # the official slim images ship without package lists or downloaded packages: a Dockerfile that
    # forgets apt-get update must fail here as it would there
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin
    # and, like them, without documentation, manuals and translations, now or from later packages
    # (the dpkg excludes of debuerreotype's --slim)
    cat > "$dir/etc/dpkg/dpkg.cfg.d/docker" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
SLIM
    # this machine's mirror may serve a frozen sid whose Release is past Valid-Until; apt would refuse
    # it (docker/asterisk/up.sh does the same in its chroot). Not in the Dockerfiles: the real
    # registries' bases point at a live mirror
    echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99machine-no-valid-until"
    find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* "$dir"/usr/share/lintian/*
    tar -C "$dir" --numeric-owner -cf "$tar.partial" . && mv "$tar.partial" "$tar"
    rm -rf --one-file-system "$dir"
  fi
  echo "$tar"
}

# Node 20 the way the official image has it: /usr/local/bin/node, npm and corepack in
# /usr/local/lib/node_modules, a `node` user (1000:1000). Taken from this machine's Node 20.
node_layer() {
  local tar="$CT_CACHE/node-$(node -v)-layer.tar" dir nodebin npmdir
  if [ ! -s "$tar" ]; then
    nodebin=$(readlink -f "$(command -v node)")
    npmdir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
    [ -f "$npmdir/package.json" ] || die "cannot find npm's folder (looked at $npmdir)"
    case "$(node -v)" in v20.*) ;; *) die "node:20-bookworm-slim needs Node 20 on this machine, found $(node -v)";; esac
    dir=$(mktemp -d "$CT_CACHE/node-layer.XXXXXX")
    mkdir -p "$dir/usr/local/bin" "$dir/usr/local/lib/node_modules"
    cp "$nodebin" "$dir/usr/local/bin/node"
    cp -a "$npmdir" "$dir/usr/local/lib/node_modules/npm"
    [ -d "$(dirname "$npmdir")/corepack" ] && cp -a "$(dirname "$npmdir")/corepack" "$dir/usr/local/lib/node_modules/corepack"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
    # the official image has the headers too; node-gyp (better-sqlite3) builds against them instead
    # of downloading them
    [ -d /usr/include/node ] && mkdir -p "$dir/usr/local/include" && cp -a /usr/include/node "$dir/usr/local/include/node"
    tar -C "$dir" --numeric-owner -cf "$tar.partial" . && mv "$tar.partial" "$tar"
    rm -rf "$dir"
  fi
  echo "$tar"
}

# What this machine needs to reach npm's registry, which a real base image would not carry: the CA
# bundle (an intercepting proxy's CA may be in it) in npm's global config. Not cached: it follows
# the machine.
machine_layer() { # dir
  local dir=$1
  mkdir -p "$dir/usr/local/etc" "$dir/usr/local/share/ca-certificates"
  {
    echo "# written by test/containers/bases.sh: this machine's npm settings"
    if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
      cp /etc/ssl/certs/ca-certificates.crt "$dir/usr/local/share/ca-certificates/machine-bundle.crt"
      echo "cafile=/usr/local/share/ca-certificates/machine-bundle.crt"
    fi
    [ -d "$dir/usr/local/include/node" ] && echo "nodedir=/usr/local"
    for k in registry proxy https-proxy noproxy; do
      v=$(npm config get "$k" 2>/dev/null || true)
      case "$v" in ""|null|undefined) ;; *) [ "$k" = registry ] && [ "$v" = https://registry.npmjs.org/ ] || echo "$k=$v";; esac
    done
  } > "$dir/usr/local/etc/npmrc"
}

# podman import + tag, unless an image of that name is already here
import_base() { # name tarball [--change ...]
  # fully qualified, so that FROM node:... finds it as it would find the Docker Hub image
  local name=docker.io/library/$1 tar=$2; shift 2
  if podman image exists "$name"; then return 0; fi
  say "importing $name"
  podman import -q "$@" "$tar" "$name" > /dev/null
  CT_MADE_IMAGES+=("$name")
}

build_bases() {
  local sid bookworm nodetar work
  sid=$(rootfs_tarball sid)
  import_base debian:sid-slim "$sid" --change 'CMD ["bash"]'
  if ! podman image exists docker.io/library/node:20-bookworm-slim; then
    bookworm=$(rootfs_tarball bookworm)
    nodetar=$(node_layer)
    # one tarball: bookworm + the Node layer + the node user (a minbase root has no useradd in a
    # place we can call without a container, so the user is written the way useradd would)
    work=$(mktemp -d "$CT_WORK/node-base.XXXXXX")
    tar -C "$work" -xf "$bookworm"
    tar -C "$work" -xf "$nodetar"
    machine_layer "$work"
    grep -q '^node:' "$work/etc/group" || echo 'node:x:1000:' >> "$work/etc/group"
    grep -q '^node:' "$work/etc/passwd" || echo 'node:x:1000:1000::/home/node:/bin/bash' >> "$work/etc/passwd"
    grep -q '^node:' "$work/etc/shadow" || echo 'node:*:20000:0:99999:7:::' >> "$work/etc/shadow"
    mkdir -p "$work/home/node" && chown 1000:1000 "$work/home/node"
    tar -C "$work" --numeric-owner -cf "$CT_WORK/node-base.tar" .
    rm -rf --one-file-system "$work"
    import_base node:20-bookworm-slim "$CT_WORK/node-base.tar" \
      --change "ENV NODE_VERSION=$(node -v | cut -c2-)" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["node"]'
    rm -f "$CT_WORK/node-base.tar"
  fi
}
