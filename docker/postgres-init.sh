#!/usr/bin/env bash
# The tracker's database, created once by the postgres image on its first start (an empty
# data volume): docker-compose.yml mounts this file into /docker-entrypoint-initdb.d.
#
#   - role `tracker`: may log in, nothing else (no superuser, no CREATEDB, no CREATEROLE);
#     its password is TRACKER_DB_PASSWORD from .env;
#   - database `tracker`, owned by the superuser: `tracker` may connect and make temporary
#     tables (the history writer stages its batches in one), nobody else may connect;
#   - schema `tracker`, owned by `tracker` and first on its search_path: the app creates its
#     tables there; nobody may create anything in `public`.
#
# The image runs this as the superuser over the local socket, while the server listens on no
# TCP port yet. It is run when executable, sourced otherwise: it only calls psql, either way.
# TRACKER_DB_NAME and TRACKER_DB_USER (default: tracker) exist for tests/integration/test_deploy.py.
set -eo pipefail  # not -u: the image sources a script that is not executable

: "${TRACKER_DB_PASSWORD:?TRACKER_DB_PASSWORD is not set (see .env.example)}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
     -v db="${TRACKER_DB_NAME:-tracker}" -v role="${TRACKER_DB_USER:-tracker}" \
     -v password="$TRACKER_DB_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'password';
CREATE DATABASE :"db" TEMPLATE template0 ENCODING 'UTF8';
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
ALTER ROLE :"role" IN DATABASE :"db" SET search_path = :"role";

\connect :"db"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA :"role" AUTHORIZATION :"role";
SQL
