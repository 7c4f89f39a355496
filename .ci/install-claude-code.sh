#!/usr/bin/env bash
# Installs the Claude Code CLI at the version pinned in docker/claude-code.version
# (the one place the version lives). Does nothing when that version is already
# the `claude` on PATH, so CI and image builds can call it unconditionally.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version_file="$root/docker/claude-code.version"
wanted="$(tr -d '[:space:]' < "$version_file")"
if [[ -z "$wanted" ]]; then
    echo "install-claude-code: $version_file is empty" >&2
    exit 1
fi

installed_version() {
    # `claude --version` prints e.g. "2.1.330 (Claude Code)".
    command -v claude >/dev/null 2>&1 || return 0
    claude --version 2>/dev/null | awk 'NR==1 {print $1}'
}

current="$(installed_version)"
if [[ "$current" == "$wanted" ]]; then
    echo "install-claude-code: claude $wanted already installed at $(command -v claude)"
    exit 0
fi

echo "install-claude-code: installing @anthropic-ai/claude-code@$wanted (found: ${current:-none})"
npm install --global --no-audit --no-fund "@anthropic-ai/claude-code@$wanted"
hash -r

current="$(installed_version)"
if [[ "$current" != "$wanted" ]]; then
    # npm 11 may skip the package's postinstall (allow-scripts), which is what
    # copies the native binary over the placeholder; run it ourselves.
    package_dir="$(npm root --global)/@anthropic-ai/claude-code"
    if [[ -f "$package_dir/install.cjs" ]]; then
        (cd "$package_dir" && node install.cjs)
        hash -r
        current="$(installed_version)"
    fi
fi
if [[ "$current" != "$wanted" ]]; then
    echo "install-claude-code: expected claude $wanted on PATH, got '${current:-none}'" >&2
    exit 1
fi
echo "install-claude-code: claude $current ready at $(command -v claude)"
