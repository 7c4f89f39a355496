# CTO Sidekick images. Targets:
#   production  the daemon (docker compose up -d orchestrator)
#   test        the test suite, run by default (docker compose run --rm test)
#   dev         a shell with tmux, git, vim and the package editable from the checkout
#   base        Python, tmux, git, tini, the Claude Code CLI and the package (production builds on it)
#
# BASE_IMAGE is any Debian bookworm image with python3 (3.11) and venv: the
# official slim Python image by default, or the image docker/build-base-image.sh
# makes from the host's packages where nothing can be pulled (it also trusts the
# host's CAs, so pip and npm here reach their registries through a TLS proxy).
#
# Only classic-builder features are used (no RUN --mount, no COPY --chmod), so
# the file builds the same with or without BuildKit/buildx. Layers go from the
# least to the most often changed: OS packages, the CLI, dependencies, the code;
# test and dev share a stage with the test dependencies, so a code change only
# reinstalls the package (seconds) in every target.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- the Claude Code CLI, once for every target ------------------------------------
# The npm package is a launcher around one self-contained native binary in a
# per-platform package; only that binary is kept, so no image ships node or npm.
FROM ${BASE_IMAGE} AS claude-cli
RUN apt-get update \
    && apt-get install -y --no-install-recommends npm ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY docker/claude-code.version /tmp/claude-code.version
RUN set -eu; \
    version="$(tr -d '[:space:]' < /tmp/claude-code.version)"; \
    case "$(dpkg --print-architecture)" in \
        amd64) platform=linux-x64 ;; \
        arm64) platform=linux-arm64 ;; \
        *) echo "no Claude Code build for $(dpkg --print-architecture)" >&2; exit 1 ;; \
    esac; \
    mkdir -p /out /tmp/pack && cd /tmp/pack; \
    npm pack --silent "@anthropic-ai/claude-code-${platform}@${version}"; \
    tar -xzf ./*.tgz; \
    install -m 0755 package/claude /out/claude; \
    /out/claude --version | grep -q "^${version} "; \
    rm -rf /tmp/pack /root/.npm

# --- the runtime dependencies, in a venv built apart ------------------------------
# Installed from the lock (requirements/runtime.txt, every version and hash
# pinned; scripts/lock.sh refreshes it) alone, so a code change does not
# reinstall them. The venv gets no pip or setuptools (production never runs
# them) and its shared objects are stripped of symbols; both together are about 35 MB.
FROM ${BASE_IMAGE} AS venv
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/pip \
    && python3 -m venv --without-pip /opt/sidekick
COPY requirements/runtime.txt /deps/
RUN /opt/pip/bin/pip --python /opt/sidekick/bin/python install --quiet --no-cache-dir \
        --require-hashes -r /deps/runtime.txt \
    && find /opt/sidekick -name '*.so' -exec strip --strip-unneeded {} +

# --- system: OS packages, the CLI and the dependencies ------------------------------
FROM ${BASE_IMAGE} AS system
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/sidekick \
    PATH=/opt/sidekick/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=xterm-256color
# git's server, mail and scalar programs and the C headers for building perl
# extensions (21 MB together) serve nothing an agent does.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tmux git tini ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && cd /usr/lib/git-core \
    && rm -f git-daemon git-shell git-imap-send git-http-backend git-http-push scalar \
    && rm -f /usr/lib/*-linux-gnu/perl/5.*/CORE/*.h
COPY --from=claude-cli /out/claude /usr/local/bin/claude
COPY --from=venv /opt/sidekick /opt/sidekick

# --- base: the package installed --------------------------------------------------
FROM system AS base
COPY pyproject.toml README.md /src/
COPY src /src/src
# pip comes from a throwaway venv, so none stays in the image.
RUN python3 -m venv /tmp/pip \
    && /tmp/pip/bin/pip --python /opt/sidekick/bin/python install --quiet --no-deps /src \
    && rm -rf /tmp/pip /src \
    && sidekick --version

# --- production -------------------------------------------------------------------
FROM base AS production
# The container starts as root and its entrypoint (sidekick.container_start) drops
# to whoever owns the mounted data directory, so the daemon can write the list and
# what it writes back stays the person's, whatever their UID; nothing about the
# host user is built in. A data directory owned by root keeps the daemon root.
# SIDEKICK_UID/GID only name the account that owns the image's own directories.
ARG BASE_IMAGE
ARG SIDEKICK_UID=1000
ARG SIDEKICK_GID=1000
RUN { getent group "${SIDEKICK_GID}" >/dev/null || groupadd --gid "${SIDEKICK_GID}" sidekick; } \
    && { getent passwd "${SIDEKICK_UID}" >/dev/null \
        || useradd --uid "${SIDEKICK_UID}" --gid "${SIDEKICK_GID}" --no-create-home --shell /bin/bash sidekick; } \
    && mkdir -p /home/sidekick /state /data /projects /run/sidekick-tmux \
    && chown "${SIDEKICK_UID}:${SIDEKICK_GID}" /home/sidekick /state /data /projects /run/sidekick-tmux \
    && chmod 0700 /run/sidekick-tmux
# The build settings, so a start with other ones in compose says a rebuild is due.
ENV HOME=/home/sidekick \
    SIDEKICK_CONFIG=/data/config.yaml \
    SIDEKICK_DAEMON__STATE_DIR=/state \
    SIDEKICK_TMUX__SOCKET=/run/sidekick-tmux/sock \
    SIDEKICK_IMAGE_BUILT_WITH="SIDEKICK_BASE_IMAGE=${BASE_IMAGE}"
WORKDIR /data
VOLUME ["/state"]
STOPSIGNAL SIGTERM
# The first probe comes one interval after start; 5 s keeps `up` to healthy short
# while a probe (about 0.15 s of CPU) stays cheap.
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 CMD ["sidekick", "check"]
# tini reaps the agents' tmux server if it is orphaned and passes SIGTERM on to
# `sidekick supervise`, which stops the daemon and leaves the agents to the next one.
# The entrypoint replaces itself with `sidekick <arguments>` once it is the data's owner.
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/sidekick/bin/python", "-m", "sidekick.container_start"]
CMD ["supervise"]

# --- test-deps: what the test and dev images share --------------------------------
FROM system AS test-deps
RUN apt-get update \
    && apt-get install -y --no-install-recommends vim sed procps less htop \
    && rm -rf /var/lib/apt/lists/*
# The test dependencies from their lock (the runtime ones are already there at
# the same pins), and pip itself: test and dev run pip inside.
COPY requirements/test.txt /deps/
RUN python -m ensurepip --upgrade --default-pip >/dev/null \
    && python -m pip install --quiet --require-hashes -r /deps/test.txt \
    && rm -rf /deps

# --- test -------------------------------------------------------------------------
FROM test-deps AS test
ARG SIDEKICK_UID=1000
ARG SIDEKICK_GID=1000
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN python -m pip install --quiet --no-deps /src \
    && rm -rf /src \
    && { getent group "${SIDEKICK_GID}" >/dev/null || groupadd --gid "${SIDEKICK_GID}" tester; } \
    && { getent passwd "${SIDEKICK_UID}" >/dev/null \
        || useradd --uid "${SIDEKICK_UID}" --gid "${SIDEKICK_GID}" --no-create-home tester; } \
    && mkdir -p /app \
    && chown "${SIDEKICK_UID}:${SIDEKICK_GID}" /app
WORKDIR /app
COPY pyproject.toml /app/
COPY tests /app/tests
USER ${SIDEKICK_UID}:${SIDEKICK_GID}
ENV HOME=/tmp
CMD ["python", "-m", "pytest", "-p", "no:cacheprovider", "tests"]

# --- dev --------------------------------------------------------------------------
FROM test-deps AS dev
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client \
    && rm -rf /var/lib/apt/lists/*
ARG SIDEKICK_UID=1000
ARG SIDEKICK_GID=1000
RUN { getent group "${SIDEKICK_GID}" >/dev/null || groupadd --gid "${SIDEKICK_GID}" dev; } \
    && { getent passwd "${SIDEKICK_UID}" >/dev/null \
        || useradd --uid "${SIDEKICK_UID}" --gid "${SIDEKICK_GID}" --no-create-home --shell /bin/bash dev; } \
    && mkdir -p /home/dev /workspace \
    && chown "${SIDEKICK_UID}:${SIDEKICK_GID}" /home/dev /workspace
# Editable in compat mode: a .pth file names /workspace/src, so the checkout
# mounted there is what runs, new modules included. The venv is writable by its
# group, which the entrypoint gives the user it runs as, so that `pip install`
# works inside whoever that is (a chown at start would copy the whole venv up).
COPY pyproject.toml README.md /workspace/
COPY src /workspace/src
RUN python -m pip install --quiet --no-deps -e /workspace \
        --config-settings editable_mode=compat \
    && rm -rf /workspace/src/*.egg-info /workspace/build \
    && chown -R "${SIDEKICK_UID}:${SIDEKICK_GID}" /opt/sidekick \
    && chmod -R g+w /opt/sidekick \
    && find /opt/sidekick -type d -exec chmod g+s {} +
# tmux's shells keep the venv on PATH (tmux starts login shells, whose
# /etc/profile resets PATH), and so do login shells.
COPY docker/dev/tmux.conf /etc/tmux.conf
COPY docker/dev/venv-path.sh /etc/profile.d/sidekick-venv.sh
# The container starts as root; the entrypoint drops to whoever owns the checkout
# mounted at /workspace, so it is writable whoever owns it on the host.
COPY docker/dev/entrypoint.sh /usr/local/bin/dev-entrypoint
ENV HOME=/home/dev \
    SHELL=/bin/bash
WORKDIR /workspace
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/dev-entrypoint"]
CMD ["tmux", "new-session", "-A", "-s", "dev"]
