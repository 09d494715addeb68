# The tracker's image: Faust workers, the simulator and the CLI.
# Build stage: dependencies (a cached layer of their own), then the map's assets from npm.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv $VIRTUAL_ENV
ENV PATH=$VIRTUAL_ENV/bin:$PATH
WORKDIR /src
COPY setup.cfg pyproject.toml ./
# Install the pinned dependencies from setup.cfg alone, so code changes reuse this layer.
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); \
print(c['options']['install_requires'])" > requirements.txt \
 && pip install -r requirements.txt
COPY README.md ./
COPY tracker tracker
COPY agents agents
COPY tables tables
COPY web web
RUN python -m web.assets fetch && pip install --no-deps .

# Runtime stage: no compiler, no npm, not root.
FROM python:3.11-slim
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN useradd --system --create-home --uid 10001 tracker \
 && mkdir -p /data /passwords && chown tracker /data /passwords
COPY --from=build /opt/venv /opt/venv
USER tracker
WORKDIR /home/tracker
EXPOSE 6066
VOLUME ["/data"]
CMD ["faust", "-A", "tracker.app", "--datadir", "/data", "worker", "-l", "info", "--web-port", "6066"]
