# The action's image. The runner builds it at every run of every release job, so it installs
# only what `python -m publisher` imports, pinned with hashes, and keeps no caches.

# The base: the tag python:3.13-slim, pinned by the digest of its multi-platform index, so x86_64
# and arm64 runners build on the same release (Python 3.13.15, September 2026). Dependabot
# refreshes the digest on this line; it cannot see an image named only in an ARG, so BASE_IMAGE
# selects this stage unless a build names another base: the tests build on a local stand-in
# (tests/container/setup.sh).
ARG BASE_IMAGE=pinned-base
FROM python:3.13-slim@sha256:8d9d0b8bcf6506481eae4907c18f5e3e7902e629f5f6d684f9e7c32e85e3ddf0 AS pinned-base

FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# One step, since every step costs its own container: uv (fetched by docker/fetch_uv.py, its
# hash checked against build-requirements.txt, and deleted with the rest of /tmp/build) installs
# the lock in a fraction of the time pip takes, then only what a run imports is byte-compiled
# (docker/precompile.py says why). UV_SYSTEM_CERTS: trust the image's CA store, as fetch_uv.py
# does, so a build behind a TLS-inspecting proxy works for both; TMPDIR: uv's lock file goes too.
COPY docker/build-requirements.txt docker/requirements.txt \
     docker/fetch_uv.py docker/precompile.py /tmp/build/
COPY publisher /opt/publisher/publisher
RUN python /tmp/build/fetch_uv.py /tmp/build/build-requirements.txt /tmp/build/uv \
    && UV_SYSTEM_CERTS=1 UV_NO_CACHE=1 TMPDIR=/tmp/build /tmp/build/uv pip install \
        --system --break-system-packages --no-deps --require-hashes --no-compile \
        -r /tmp/build/requirements.txt \
    && python /tmp/build/precompile.py /opt/publisher/publisher \
    && rm -r /tmp/build
ENV PYTHONPATH=/opt/publisher

# -P: not the working directory (the workspace) first on sys.path, where a project's own
# `rich/` or `twine/` would shadow the locked packages.
ENTRYPOINT ["python", "-P", "-m", "publisher"]
