# The tracker's image: Faust workers, the simulator and the CLI.
# PYTHON_IMAGE is python:3.11-slim (docker-compose.yml's TRACKER_PYTHON_IMAGE); scripts/images
# builds a stand-in for it where Docker Hub cannot be reached.
ARG PYTHON_IMAGE=python:3.11-slim

# The map's JavaScript and CSS: taken from web/static/vendor when the build context has them
# (`make install` or `scripts/images context` puts them there), otherwise fetched from npm
# here. Only the asset manifest is copied first, so this stage is rebuilt when it changes.
FROM ${PYTHON_IMAGE} AS assets
WORKDIR /src
COPY tracker/__init__.py tracker/settings.py tracker/
COPY web/__init__.py web/assets.py web/
COPY web/static web/static
RUN if ! python -m web.assets fetch; then \
      apt-get update && apt-get install -y --no-install-recommends npm \
      && python -m web.assets fetch; \
    fi

# The dependencies: every version pinned by docker/requirements.lock, installed from the wheels
# in docker/wheels when the context has them (`scripts/images context`, for a machine whose
# containers cannot reach PyPI), from PyPI otherwise. setuptools and wheel are locked for the
# project's own build only. This stage becomes one layer of the image that a change to the
# code leaves as it is.
FROM ${PYTHON_IMAGE} AS deps
ENV VIRTUAL_ENV=/opt/venv PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv $VIRTUAL_ENV
ENV PATH=$VIRTUAL_ENV/bin:$PATH
COPY docker/requirements.lock docker/wheel[s] /wheels/
RUN if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; fi \
 && pip install "$@" -r /wheels/requirements.lock \
 && pip uninstall --yes setuptools wheel

# The project as a wheel, checked against the locked dependencies.
FROM deps AS build
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY tracker tracker
COPY agents agents
COPY tables tables
COPY web web
COPY --from=assets /src/web/static/vendor web/static/vendor
RUN if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; fi \
 && pip wheel "$@" --no-deps --wheel-dir /dist . \
 && pip install --no-deps /dist/*.whl && pip check

# Runtime stage: no compiler, no npm, not root.
FROM ${PYTHON_IMAGE}
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN useradd --system --create-home --uid 10001 tracker \
 && mkdir -p /data /passwords && chown tracker /data /passwords
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /dist /tmp/dist
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-index /tmp/dist/*.whl \
 && rm -rf /tmp/dist
USER tracker
WORKDIR /home/tracker
EXPOSE 6066
VOLUME ["/data"]
CMD ["faust", "-A", "tracker.app", "--datadir", "/data", "worker", "-l", "info", "--web-port", "6066"]
