# The action's image. The runner builds it at every run of every release job, so it installs
# only what `python -m publisher` imports, pinned with hashes, and keeps no caches.
FROM python:3.13-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

COPY docker/requirements.lock /tmp/requirements.lock
RUN python -m pip install --no-deps --require-hashes --no-compile -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

COPY publisher /opt/publisher/publisher
# One compile pass over everything, in parallel (pip's own would be serial).
RUN python -m compileall -q -j 0 /opt/publisher "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ENV PYTHONPATH=/opt/publisher

ENTRYPOINT ["python", "-m", "publisher"]
